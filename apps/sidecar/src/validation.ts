// Input checks shared by the handlers. Each returns nothing or throws an INVALID_ARGUMENT RpcError
// whose message names the field and says what to send instead: a refused call writes nothing.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { checkMetricName } from '@training-callbacks/metric-catalog';

export const JOB_ID_MAX_LENGTH = 128;
/** More metrics than this in one epoch report is a bug in the trainer, not a real epoch. */
export const MAX_METRICS_PER_CALL = 1000;
export const PARAM_KEY_MAX_LENGTH = 250;
export const PARAM_VALUE_MAX_LENGTH = 6000;
export const MAX_PARAMS = 1000;
export const NAME_MAX_LENGTH = 256;
export const ERROR_MESSAGE_MAX_LENGTH = 16384;

// biome-ignore lint/suspicious/noControlCharactersInRegex: detecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function invalid(message: string): never {
  throw new RpcError(Status.INVALID_ARGUMENT, message);
}

/** Shows a name safely inside an error message, control characters escaped. */
export function quote(value: string, max = 80): string {
  const shown = value.length > max ? `${value.slice(0, max)}…` : value;
  return JSON.stringify(shown);
}

export function checkJobId(jobId: string): void {
  if (jobId.length === 0) invalid('job_id is empty; send the id of the training job (1–128 characters)');
  if (jobId.length > JOB_ID_MAX_LENGTH) {
    invalid(`job_id is ${jobId.length} characters long; the limit is ${JOB_ID_MAX_LENGTH}`);
  }
  if (CONTROL.test(jobId))
    invalid(`job_id ${quote(jobId)} contains control characters; use printable characters`);
}

export function checkEpoch(epoch: number, field = 'epoch'): void {
  if (epoch < 0) invalid(`${field} is ${epoch}; epochs are counted from 0`);
}

export function checkShortText(value: string, field: string): void {
  if (value.length > NAME_MAX_LENGTH)
    invalid(`${field} is ${value.length} characters long; the limit is ${NAME_MAX_LENGTH}`);
  if (CONTROL.test(value)) invalid(`${field} ${quote(value)} contains control characters`);
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
    if (key.length > PARAM_KEY_MAX_LENGTH) {
      invalid(
        `params key ${quote(key)} is ${key.length} characters long; the limit is ${PARAM_KEY_MAX_LENGTH}`,
      );
    }
    if (CONTROL.test(key)) invalid(`params key ${quote(key)} contains control characters`);
    const value = params[key] ?? '';
    if (value.length > PARAM_VALUE_MAX_LENGTH) {
      invalid(
        `params[${quote(key)}] is ${value.length} characters long; the limit is ${PARAM_VALUE_MAX_LENGTH} (MLflow's)`,
      );
    }
  }
}

/** A destination path inside the run's artifacts: relative, no "..", no empty segments. */
export function checkArtifactPath(artifactPath: string, field = 'artifact_path', allowEmpty = true): void {
  if (artifactPath === '') {
    if (allowEmpty) return;
    invalid(`${field} is empty; send the destination path, e.g. "checkpoints/best.pt"`);
  }
  if (artifactPath.length > 512)
    invalid(`${field} is ${artifactPath.length} characters long; the limit is 512`);
  if (CONTROL.test(artifactPath)) invalid(`${field} ${quote(artifactPath)} contains control characters`);
  if (artifactPath.startsWith('/') || artifactPath.includes('\\')) {
    invalid(
      `${field} ${quote(artifactPath)} must be a relative path with "/" separators, e.g. "checkpoints"`,
    );
  }
  const segments = artifactPath.split('/');
  if (segments.some((s) => s === '..' || s === '.' || s === '')) {
    invalid(`${field} ${quote(artifactPath)} must not contain "..", "." or empty segments`);
  }
}
