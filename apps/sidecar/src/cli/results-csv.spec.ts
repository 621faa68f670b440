import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { csvLine, parseCsv } from './csv.ts';
import { parsePythonFloat, ResultsCsvError, readResultsCsv } from './results-csv.ts';

describe('readResultsCsv (the rules of proto/results-csv.json)', () => {
  it('reads an Ultralytics results.csv with padded names and cells: 1-based epochs become 0-based, time is skipped', () => {
    const epochs = readResultsCsv(
      readFileSync(path.join(import.meta.dirname, 'testdata', 'results.csv'), 'utf8'),
    );
    expect(epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
    expect(epochs[0]!.metrics).toEqual({
      'train/box_loss': 1.2613,
      'train/cls_loss': 2.8705,
      'train/dfl_loss': 1.2476,
      'metrics/precision(B)': 0.55012,
      'metrics/recall(B)': 0.41318,
      'metrics/mAP50(B)': 0.44121,
      'metrics/mAP50-95(B)': 0.27193,
      'val/box_loss': 1.3104,
      'val/cls_loss': 2.4871,
      'val/dfl_loss': 1.2869,
      'lr/pg0': 0.0033261,
      'lr/pg1': 0.0033261,
      'lr/pg2': 0.0033261,
    });
    // Validation did not run in the second epoch: its cells are empty, and stay missing (never 0).
    expect(Object.keys(epochs[1]!.metrics)).toEqual([
      'train/box_loss',
      'train/cls_loss',
      'train/dfl_loss',
      'lr/pg0',
      'lr/pg1',
      'lr/pg2',
    ]);
  });

  it('reads numbers as Python float() does; a cell that is not a number, or a short row, is left out', () => {
    const epochs = readResultsCsv('epoch,a,b,c,d\n1.0,nan,-inf,x,1e-3\n2,Infinity,\n,5,5,5,5\n');
    expect(epochs).toHaveLength(2);
    expect(epochs[0]!.epoch).toBe(0);
    expect(epochs[0]!.metrics).toEqual({ a: Number.NaN, b: Number.NEGATIVE_INFINITY, d: 0.001 });
    expect(epochs[1]).toEqual({ epoch: 1, metrics: { a: Number.POSITIVE_INFINITY } });
    expect(parsePythonFloat('')).toBeUndefined();
    expect(parsePythonFloat('0x10')).toBeUndefined();
    expect(parsePythonFloat('.5')).toBe(0.5);
  });

  it('refuses a file without an epoch column and an epoch that is not a number, naming the line', () => {
    expect(() => readResultsCsv('step,loss\n1,2\n')).toThrow(/no "epoch" column .* "step", "loss"/);
    expect(() => readResultsCsv('epoch,loss\n1,2\nthree,4\n')).toThrow(ResultsCsvError);
    expect(() => readResultsCsv('epoch,loss\n1,2\nthree,4\n')).toThrow(/line 3: the epoch "three"/);
  });
});

describe('csv', () => {
  it('quotes only what needs it and reads quoted fields, CRLF and a byte-order mark back', () => {
    const line = csvLine(['a', 'b,c', 'say "hi"', ' pad', 'multi\nline']);
    expect(line).toBe('a,"b,c","say ""hi"""," pad","multi\nline"');
    expect(parseCsv(`\ufeff${line}\r\nx,y\r\n`)).toEqual([
      ['a', 'b,c', 'say "hi"', ' pad', 'multi\nline'],
      ['x', 'y'],
    ]);
    expect(parseCsv('')).toEqual([]);
  });
});
