// Generated from proto/results-csv.json by packages/proto/scripts/generate-results-csv.ts; do not edit.
// How an Ultralytics results.csv becomes the contract's epochs, for every importer:
// - Column names and cells are read without their surrounding whitespace (older Ultralytics versions pad them).
// - A row with an empty epoch cell is skipped; the epoch cell is a number ("3" or "3.0") counted from epochBase, so the contract's 0-based epoch is epoch - epochBase.
// - The skippedColumns are not metrics (time is the elapsed seconds) and are not reported.
// - Every other column is a metric under its name as written (the sidecar normalises it through the catalog, e.g. metrics/mAP50(B) -> mAP50).
// - A value is a number as Python's float() reads it (nan and inf included); an empty cell, a missing column or a cell that is not a number is left out of the epoch: a missing value stays missing, never 0.

/** The framework an imported job is begun with. */
export const RESULTS_CSV_FRAMEWORK = "ultralytics";
/** The task type of an imported job unless another is given. */
export const RESULTS_CSV_DEFAULT_TASK_TYPE = "object_detection";
/** The column holding the epoch number. */
export const RESULTS_CSV_EPOCH_COLUMN = "epoch";
/** The number of the first epoch in the file (the contract's epochs start at 0). */
export const RESULTS_CSV_EPOCH_BASE = 1;
/** Columns that are not metrics. */
export const RESULTS_CSV_SKIPPED_COLUMNS: readonly string[] = Object.freeze(["time"]);
/** The rules, as sentences (for help texts). */
export const RESULTS_CSV_RULES: readonly string[] = Object.freeze([
  "Column names and cells are read without their surrounding whitespace (older Ultralytics versions pad them).",
  "A row with an empty epoch cell is skipped; the epoch cell is a number (\"3\" or \"3.0\") counted from epochBase, so the contract's 0-based epoch is epoch - epochBase.",
  "The skippedColumns are not metrics (time is the elapsed seconds) and are not reported.",
  "Every other column is a metric under its name as written (the sidecar normalises it through the catalog, e.g. metrics/mAP50(B) -> mAP50).",
  "A value is a number as Python's float() reads it (nan and inf included); an empty cell, a missing column or a cell that is not a number is left out of the epoch: a missing value stays missing, never 0."
]);
