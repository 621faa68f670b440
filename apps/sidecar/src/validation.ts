// Input checks shared by the handlers. Each returns nothing or throws an INVALID_ARGUMENT RpcError
// whose message names the field and says what to send instead: a refused call writes nothing.
import { toBinary } from '@bufbuild/protobuf';
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { checkMetricName } from '@training-callbacks/metric-catalog';
import {
  type BeginTrainingRequest,
  BeginTrainingRequestSchema,
  BOOT_ID_MAX_LENGTH,
  HOSTNAME_MAX_LENGTH,
  MAX_PARAMS,
  PARAM_KEY_FORBIDDEN,
  PARAM_KEY_MAX_LENGTH,
  PARAM_VALUE_MAX_LENGTH,
  type TrainerProcess,
} from '@training-callbacks/proto';

export const JOB_ID_MAX_LENGTH = 128;
/** More metrics than this in one epoch report is a bug in the trainer, not a real epoch. */
export const MAX_METRICS_PER_CALL = 1000;
// The params limits come from proto/request-limits.json (the Python client applies them too).
export { MAX_PARAMS, PARAM_KEY_MAX_LENGTH, PARAM_VALUE_MAX_LENGTH };
/** The MLflow run name's limit (as a tag key's; `mlflow.runName` is a tag). */
export const RUN_NAME_MAX_LENGTH = 250;
/** MLflow's tag key limit (`MAX_ENTITY_KEY_LENGTH`). */
export const TAG_KEY_MAX_LENGTH = 250;
/** MLflow 2.x's run tag value limit (3.x allows 8000; the lower one holds on both). */
export const TAG_VALUE_MAX_LENGTH = 5000;
/** One MLflow log-batch carries at most 100 tags; more is not a run description but data. */
export const MAX_TAGS = 100;
/** Tag key prefixes the sidecar and MLflow set themselves. */
export const RESERVED_TAG_PREFIXES = ['mlflow.', 'training_callbacks.'] as const;
/** The characters MLflow allows in a tag key: Unicode letters and digits, `_ - . /` and space. */
const TAG_KEY_CHARACTERS = /^[\p{L}\p{N}\p{M}_\-. /]+$/u;
export const NAME_MAX_LENGTH = 256;
export const ERROR_MESSAGE_MAX_LENGTH = 16384;
/** Longest artifact path, in characters (code points). */
export const ARTIFACT_PATH_MAX_LENGTH = 512;
/** Longest name between two "/" of an artifact path, in bytes of UTF-8: most file systems' NAME_MAX. */
export const ARTIFACT_SEGMENT_MAX_BYTES = 255;

/**
 * Largest BeginTraining request (encoded), i.e. what a job stores about itself: params, configs and
 * custom metric definitions. Far below the default message limit (16 MiB), so that every stored job
 * fits, with its final metrics and status, into one GetJob or ListJobs answer.
 */
export const JOB_DESCRIPTION_MAX_BYTES = 1024 * 1024;
/** Deepest nesting of objects and lists in model_config / training_config (the config itself is level 1). */
export const STRUCT_MAX_DEPTH = 32;
/** google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z … 9999-12-31T23:59:59.999999999Z. */
const TIMESTAMP_MIN_SECONDS = -62135596800n;
const TIMESTAMP_MAX_SECONDS = 253402300799n;

// biome-ignore lint/suspicious/noControlCharactersInRegex: detecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function invalid(message: string): never {
  throw new RpcError(Status.INVALID_ARGUMENT, message);
}

/** Shows a name safely inside an error message, control characters escaped, cut at `max` code points. */
export function quote(value: string, max = 80): string {
  if (value.length <= max) return JSON.stringify(value);
  // max + 1 code points fit in 2·max + 2 UTF-16 units; a pair cut at the end lies beyond the first max.
  const points = [...value.slice(0, max * 2 + 2)];
  return points.length > max ? `${JSON.stringify(points.slice(0, max).join(''))}…` : JSON.stringify(value);
}

/**
 * The length of `value` in Unicode code points — what users, Python and MLflow call characters (a
 * UTF-16 count would make "😀" two characters long). Fast when the UTF-16 length already fits.
 */
export function codePointLength(value: string): number {
  let length = 0;
  for (let i = 0; i < value.length; i++, length++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
  }
  return length;
}

/** Cuts `value` to at most `max` code points, never inside a surrogate pair. */
export function truncateCodePoints(value: string, max: number): string {
  if (value.length <= max) return value;
  let units = 0;
  for (let points = 0; points < max && units < value.length; points++) {
    const unit = value.charCodeAt(units);
    units += unit >= 0xd800 && unit <= 0xdbff && units + 1 < value.length ? 2 : 1;
  }
  return value.slice(0, units);
}

/** Refuses a text longer than `max` code points; the message names the field and the limit. */
function checkLength(value: string, max: number, field: string, suffix = ''): void {
  if (value.length <= max) return;
  const length = codePointLength(value);
  if (length > max) invalid(`${field} is ${length} characters long; the limit is ${max}${suffix}`);
}

export function checkJobId(jobId: string): void {
  if (jobId.length === 0) invalid('job_id is empty; send the id of the training job (1–128 characters)');
  checkLength(jobId, JOB_ID_MAX_LENGTH, 'job_id');
  if (CONTROL.test(jobId))
    invalid(`job_id ${quote(jobId)} contains control characters; use printable characters`);
}

export function checkEpoch(epoch: number, field = 'epoch'): void {
  if (epoch < 0) invalid(`${field} is ${epoch}; epochs are counted from 0`);
}

/** A text field within `max` characters and without control characters. */
function checkPrintable(value: string, max: number, field: string): void {
  checkLength(value, max, field);
  if (CONTROL.test(value)) invalid(`${field} ${quote(value)} contains control characters`);
}

export function checkShortText(value: string, field: string): void {
  checkPrintable(value, NAME_MAX_LENGTH, field);
}

// TrainerProcess limits (the contract's): a host name's and a boot id's come from
// proto/request-limits.json (the clients keep what they send within them); a client session id's.
export const SESSION_ID_MAX_LENGTH = 128;

/** A report's or heartbeat's `session_id`: empty, or printable and at most 128 characters. */
export function checkSessionId(sessionId: string, field = 'session_id'): void {
  checkPrintable(sessionId, SESSION_ID_MAX_LENGTH, field);
}

/** BeginTraining's `trainer`: every field optional, texts printable and within their limits. */
export function checkTrainerProcess(trainer: TrainerProcess | undefined): void {
  if (!trainer) return;
  checkPrintable(trainer.hostname, HOSTNAME_MAX_LENGTH, 'trainer.hostname');
  checkPrintable(trainer.bootId, BOOT_ID_MAX_LENGTH, 'trainer.boot_id');
  checkSessionId(trainer.sessionId, 'trainer.session_id');
}

/** Checks the names of a metric map; the whole call is refused on the first bad one. */
export function checkMetricNames(metrics: Readonly<Record<string, number>>, field: string): void {
  const names = Object.keys(metrics);
  if (names.length > MAX_METRICS_PER_CALL) {
    invalid(`${field} has ${names.length} metrics; at most ${MAX_METRICS_PER_CALL} per call are accepted`);
  }
  for (const name of names) {
    const problem = checkMetricName(name);
    if (problem) invalid(`${field}: metric name ${quote(name)}: ${problem}`);
  }
}

export function checkParams(params: Readonly<Record<string, string>>): void {
  const keys = Object.keys(params);
  if (keys.length > MAX_PARAMS)
    invalid(`params has ${keys.length} entries; at most ${MAX_PARAMS} are accepted`);
  for (const key of keys) {
    if (key.length === 0) invalid('params has an empty key; name every parameter');
    checkLength(key, PARAM_KEY_MAX_LENGTH, `params key ${quote(key)}`);
    if (PARAM_KEY_FORBIDDEN.test(key)) invalid(`params key ${quote(key)} contains control characters`);
    checkLength(params[key] ?? '', PARAM_VALUE_MAX_LENGTH, `params[${quote(key)}]`, " (MLflow's)");
  }
}

export function checkRunName(runName: string): void {
  checkPrintable(runName, RUN_NAME_MAX_LENGTH, 'run_name');
}

/** What is wrong with an MLflow tag key, or undefined when MLflow accepts it and it is not reserved. */
function tagKeyProblem(key: string): string | undefined {
  if (key === '') return 'is empty; name every tag';
  if (key.length > TAG_KEY_MAX_LENGTH && codePointLength(key) > TAG_KEY_MAX_LENGTH)
    return `is ${codePointLength(key)} characters long; the limit is ${TAG_KEY_MAX_LENGTH} (MLflow's)`;
  const reserved = RESERVED_TAG_PREFIXES.find((prefix) => key.startsWith(prefix));
  if (reserved)
    return `starts with the reserved prefix ${quote(reserved)} (set by MLflow or the sidecar); choose another key${reserved === 'mlflow.' ? ', and set the run name with run_name' : ''}`;
  if (!TAG_KEY_CHARACTERS.test(key))
    return 'may only contain letters, digits, "_", "-", ".", " " and "/" (MLflow\'s rule)';
  if (key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..'))
    return 'must not have an empty, "." or ".." segment between "/" (MLflow\'s rule)';
  return undefined;
}

/** Refuses extra run tags MLflow would refuse, or that would overwrite MLflow's or the sidecar's own. */
export function checkTags(tags: Readonly<Record<string, string>>): void {
  const keys = Object.keys(tags);
  if (keys.length > MAX_TAGS) invalid(`tags has ${keys.length} entries; at most ${MAX_TAGS} are accepted`);
  for (const key of keys) {
    const problem = tagKeyProblem(key);
    if (problem) invalid(`tags key ${quote(key)} ${problem}`);
    checkLength(tags[key] ?? '', TAG_VALUE_MAX_LENGTH, `tags[${quote(key)}]`, " (MLflow's)");
  }
}

/**
 * What is wrong with a destination path inside the run's artifacts, or undefined when it is fine:
 * relative, "/" separators, no "", "." or ".." segment, no control character or backslash, at most
 * ARTIFACT_PATH_MAX_LENGTH characters and each segment at most ARTIFACT_SEGMENT_MAX_BYTES bytes of
 * UTF-8 (what file systems allow for one name). The same rules hold for `artifact_path` and for the
 * paths LogArtifact derives from file names, so every stored artifact can be placed inside the store
 * (artifact-layout.ts).
 */
export function artifactPathProblem(artifactPath: string): string | undefined {
  if (artifactPath === '') return 'is empty; send the destination path, e.g. "checkpoints/best.pt"';
  if (artifactPath.length > ARTIFACT_PATH_MAX_LENGTH) {
    const length = codePointLength(artifactPath);
    if (length > ARTIFACT_PATH_MAX_LENGTH)
      return `is ${length} characters long; the limit is ${ARTIFACT_PATH_MAX_LENGTH}`;
  }
  if (CONTROL.test(artifactPath)) return 'contains control characters';
  if (artifactPath.startsWith('/') || artifactPath.includes('\\'))
    return 'must be a relative path with "/" separators, e.g. "checkpoints/best.pt"';
  for (const segment of artifactPath.split('/')) {
    if (segment === '..' || segment === '.' || segment === '')
      return 'must not contain "..", "." or empty segments';
    const bytes = Buffer.byteLength(segment, 'utf8');
    if (bytes > ARTIFACT_SEGMENT_MAX_BYTES) {
      return `has the name ${quote(segment, 40)}, ${bytes} bytes long in UTF-8; the limit per name (between "/") is ${ARTIFACT_SEGMENT_MAX_BYTES} bytes`;
    }
  }
  return undefined;
}

/** Refuses a bad destination path (see {@link artifactPathProblem}); `allowEmpty` for "the top". */
export function checkArtifactPath(artifactPath: string, field = 'artifact_path', allowEmpty = true): void {
  if (artifactPath === '' && allowEmpty) return;
  const problem = artifactPathProblem(artifactPath);
  if (problem)
    invalid(artifactPath === '' ? `${field} ${problem}` : `${field} ${quote(artifactPath)} ${problem}`);
}

/**
 * A request's timestamp as a Date, or undefined when unset. Refused outside google.protobuf.Timestamp's
 * range (which lies inside JavaScript's Date range, so every accepted one is stored and listed). Kept
 * with millisecond precision (truncated), as the store keeps every time.
 */
export function timestampOf(
  timestamp: { seconds: bigint; nanos: number } | undefined,
  field = 'timestamp',
): Date | undefined {
  if (timestamp === undefined) return undefined;
  const { seconds, nanos } = timestamp;
  if (
    seconds < TIMESTAMP_MIN_SECONDS ||
    seconds > TIMESTAMP_MAX_SECONDS ||
    !Number.isInteger(nanos) ||
    nanos < 0 ||
    nanos > 999_999_999
  ) {
    invalid(
      `${field} (seconds ${seconds}, nanos ${nanos}) is outside google.protobuf.Timestamp's range ` +
        '(0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z, nanos 0 to 999999999); ' +
        'send the real time, or leave it unset for the time of receipt',
    );
  }
  // Truncated to the millisecond, never rounded: 9999-12-31T23:59:59.999999999Z must not become a
  // time in the year 10000 that no Timestamp can carry back.
  return new Date(Number(seconds) * 1000 + Math.floor(nanos / 1_000_000));
}

/** How deeply objects and lists nest in a Struct value (a scalar is 0, `{}` is 1); stops past `limit`. */
function nestingDepth(value: unknown, limit: number): number {
  if (value === null || typeof value !== 'object') return 0;
  if (limit === 0) return 1;
  let deepest = 0;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    deepest = Math.max(deepest, nestingDepth(child, limit - 1));
    if (deepest >= limit) break;
  }
  return 1 + deepest;
}

/** Refuses a config nested deeper than {@link STRUCT_MAX_DEPTH} levels, naming its depth and the limit. */
export function checkStructDepth(value: unknown, field: string): void {
  // Count a little past the limit, so the message can say how deep the config is without walking
  // an arbitrarily deep one to its end.
  const depth = nestingDepth(value, STRUCT_MAX_DEPTH * 4);
  if (depth > STRUCT_MAX_DEPTH) {
    const shown = depth > STRUCT_MAX_DEPTH * 4 ? `more than ${STRUCT_MAX_DEPTH * 4}` : `${depth}`;
    invalid(
      `${field} is nested ${shown} levels deep; the limit is ${STRUCT_MAX_DEPTH} (objects and lists, the config itself being level 1) — flatten it or store it as an artifact`,
    );
  }
}

/** Refuses a job description that could not be read back in one message (see JOB_DESCRIPTION_MAX_BYTES). */
export function checkJobDescriptionSize(request: BeginTrainingRequest): void {
  const bytes = toBinary(BeginTrainingRequestSchema, request).byteLength;
  if (bytes > JOB_DESCRIPTION_MAX_BYTES) {
    invalid(
      `the job's params, model_config, training_config and custom_metrics take ${bytes} bytes encoded; ` +
        `the limit is ${JOB_DESCRIPTION_MAX_BYTES} (1 MiB), so that the job can always be read back — ` +
        'keep large configurations in an artifact and pass its name as a param',
    );
  }
}
