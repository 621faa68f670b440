// What every generator here does around its own text: read one data file of proto/ (the one home of a
// rule both clients follow), name it and the generator in a do-not-edit header, and write the files
// generated from it. Each generate-*.ts keeps only its checks and its TS/Python/Markdown text.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The repository's root; every path below is relative to it. */
export const ROOT = path.join(import.meta.dirname, '..', '..', '..');

/** A data file of proto/ as read by its generator. */
export interface DataFile<T> {
  /** The data file's path, e.g. `proto/results-csv.json`. */
  readonly source: string;
  readonly data: T;
  /** "Generated from <source> by <generator>; do not edit." */
  readonly header: string;
}

/** Reads the JSON data file `source` for the generator whose `import.meta.filename` is `generator`. */
export function readDataFile<T>(source: string, generator: string): DataFile<T> {
  const data = JSON.parse(readFileSync(path.join(ROOT, source), 'utf8')) as T;
  const header = `Generated from ${source} by ${path.relative(ROOT, generator)}; do not edit.`;
  return { source, data, header };
}

/** Reads a file of the repository (e.g. a README whose marked section is generated). */
export function readRepoFile(file: string): string {
  return readFileSync(path.join(ROOT, file), 'utf8');
}

/** Writes the generated files: path (relative to the root) → text. */
export function writeGenerated(files: Record<string, string>): void {
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(ROOT, file), text);
}
