// Reads an Ultralytics results.csv by the rules of proto/results-csv.json (shared with the Python
// importer, training_callbacks.ultralytics.read_results_csv): 1-based epochs, `time` skipped, a
// missing value stays missing.
import {
  RESULTS_CSV_EPOCH_BASE,
  RESULTS_CSV_EPOCH_COLUMN,
  RESULTS_CSV_SKIPPED_COLUMNS,
} from '@training-callbacks/proto';
import { parseCsv } from './csv.ts';

/** One row of the file: the contract's 0-based epoch and its metrics as named in the file. */
export interface ResultsCsvEpoch {
  readonly epoch: number;
  readonly metrics: Record<string, number>;
}

/** Thrown for a file that is no results.csv; the message names the line. */
export class ResultsCsvError extends Error {
  override readonly name = 'ResultsCsvError';
}

const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const SPECIAL = /^([+-]?)(nan|inf|infinity)$/i;

/** A number as Python's float() reads it (nan, inf, infinity in any case); undefined when it is none. */
export function parsePythonFloat(text: string): number | undefined {
  if (DECIMAL.test(text)) return Number(text);
  const special = SPECIAL.exec(text);
  if (!special) return undefined;
  if (special[2]!.toLowerCase() === 'nan') return Number.NaN;
  return special[1] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
}

/** The epochs of a results.csv's text. */
export function readResultsCsv(text: string): ResultsCsvEpoch[] {
  const [header, ...rows] = parseCsv(text);
  const names = (header ?? []).map((name) => name.trim());
  const epochColumn = names.indexOf(RESULTS_CSV_EPOCH_COLUMN);
  if (epochColumn < 0) {
    throw new ResultsCsvError(
      `the first line has no "${RESULTS_CSV_EPOCH_COLUMN}" column (it has ${names.length ? names.map((n) => `"${n}"`).join(', ') : 'nothing'}); give the results.csv Ultralytics writes into its run directory`,
    );
  }
  const epochs: ResultsCsvEpoch[] = [];
  rows.forEach((cells, index) => {
    const epochText = (cells[epochColumn] ?? '').trim();
    if (!epochText) return;
    const epochNumber = parsePythonFloat(epochText);
    if (epochNumber === undefined || !Number.isFinite(epochNumber)) {
      throw new ResultsCsvError(`line ${index + 2}: the epoch "${epochText}" is not a number`);
    }
    const metrics: Record<string, number> = {};
    names.forEach((name, column) => {
      if (!name || column === epochColumn || RESULTS_CSV_SKIPPED_COLUMNS.includes(name)) return;
      const text = (cells[column] ?? '').trim();
      if (!text) return;
      const value = parsePythonFloat(text);
      if (value !== undefined) metrics[name] = value;
    });
    epochs.push({ epoch: Math.trunc(epochNumber) - RESULTS_CSV_EPOCH_BASE, metrics });
  });
  return epochs;
}
