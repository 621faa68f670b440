// Turns proto/results-csv.json — how an Ultralytics results.csv becomes the contract's epochs — into
// code for both importers, so the rules (1-based epochs, skipped columns, a missing value stays
// missing) are written once:
//   packages/proto/src/gen/results_csv.ts                          (the CLI's import-csv)
//   packages/python-client/src/training_callbacks/_results_csv.py  (training_callbacks.ultralytics)
// Run through `npm run generate` (after `buf generate`, which empties src/gen); CI fails when the
// committed output differs.
import { readDataFile, writeGenerated } from './generated-files.ts';

interface ResultsCsv {
  description: string;
  framework: string;
  defaultTaskType: string;
  epochColumn: string;
  epochBase: number;
  skippedColumns: string[];
  rules: string[];
}

const { source, data, header } = readDataFile<ResultsCsv>('proto/results-csv.json', import.meta.filename);
if (!Number.isInteger(data.epochBase) || data.epochBase < 0) throw new Error(`${source}: bad epochBase`);
if (!data.epochColumn || data.skippedColumns.includes(data.epochColumn)) {
  throw new Error(`${source}: epochColumn must be set and not skipped`);
}
if (!/^[a-z_]+$/.test(data.defaultTaskType)) throw new Error(`${source}: bad defaultTaskType`);

const ts = `// ${header}
// How an Ultralytics results.csv becomes the contract's epochs, for every importer:
${data.rules.map((rule) => `// - ${rule}`).join('\n')}

/** The framework an imported job is begun with. */
export const RESULTS_CSV_FRAMEWORK = ${JSON.stringify(data.framework)};
/** The task type of an imported job unless another is given. */
export const RESULTS_CSV_DEFAULT_TASK_TYPE = ${JSON.stringify(data.defaultTaskType)};
/** The column holding the epoch number. */
export const RESULTS_CSV_EPOCH_COLUMN = ${JSON.stringify(data.epochColumn)};
/** The number of the first epoch in the file (the contract's epochs start at 0). */
export const RESULTS_CSV_EPOCH_BASE = ${data.epochBase};
/** Columns that are not metrics. */
export const RESULTS_CSV_SKIPPED_COLUMNS: readonly string[] = Object.freeze(${JSON.stringify(data.skippedColumns)});
/** The rules, as sentences (for help texts). */
export const RESULTS_CSV_RULES: readonly string[] = Object.freeze(${JSON.stringify(data.rules, null, 2).replace(/\n/g, '\n')});
`;

const py = `"""${header}

How an Ultralytics results.csv becomes the contract's epochs, for every importer:

${data.rules.map((rule) => `- ${rule}`).join('\n')}
"""

from __future__ import annotations

from typing import Final

#: The framework an imported job is begun with.
FRAMEWORK: Final = ${JSON.stringify(data.framework)}
#: The task type of an imported job unless another is given.
DEFAULT_TASK_TYPE: Final = ${JSON.stringify(data.defaultTaskType)}
#: The column holding the epoch number.
EPOCH_COLUMN: Final = ${JSON.stringify(data.epochColumn)}
#: The number of the first epoch in the file (the contract's epochs start at 0).
EPOCH_BASE: Final = ${data.epochBase}
#: Columns that are not metrics.
SKIPPED_COLUMNS: Final[frozenset[str]] = frozenset({${data.skippedColumns.map((c) => JSON.stringify(c)).join(', ')}})
`;

writeGenerated({
  'packages/proto/src/gen/results_csv.ts': ts,
  'packages/python-client/src/training_callbacks/_results_csv.py': py,
});
console.log('generate-results-csv: the results.csv rules → TS, Python');
