// Generated from proto/request-limits.json by packages/proto/scripts/generate-request-limits.ts; do not edit.
// What the sidecar accepts in BeginTraining's params (lengths in code points); both clients keep a
// job's params within the same limits before sending.

/** Most params one job may have. */
export const MAX_PARAMS = 1000;
/** Longest param key. */
export const PARAM_KEY_MAX_LENGTH = 250;
/** Longest param value. */
export const PARAM_VALUE_MAX_LENGTH = 6000;
/** A key too long: its start, this separator and this many hex digits of its SHA-256. */
export const PARAM_KEY_DIGEST_SEPARATOR = "_";
export const PARAM_KEY_DIGEST_HEX_DIGITS = 8;
/** The end of a value too long, `{length}` its length in code points. */
export const PARAM_VALUE_CUT_SUFFIX = "… (cut from {length} characters)";
/** Characters a param key must not contain. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
export const PARAM_KEY_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f]/;
/** Longest TrainerProcess.hostname. */
export const HOSTNAME_MAX_LENGTH = 255;
/** Longest TrainerProcess.boot_id. */
export const BOOT_ID_MAX_LENGTH = 64;
