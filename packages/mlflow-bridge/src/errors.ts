/** Why a call to MLflow failed, and whether trying again later can help. */
export type MlflowErrorKind =
  /** Connection refused/reset, DNS failure, TLS handshake dropped: the request may or may not have arrived. */
  | 'network'
  /** No answer within the configured time. */
  | 'timeout'
  /** MLflow (or a proxy in front of it) answered with an HTTP error. */
  | 'http'
  /** The configuration or the server set-up is wrong (bad URI scheme, artifact proxy disabled, …). */
  | 'config';

export interface MlflowErrorInit {
  kind: MlflowErrorKind;
  retryable: boolean;
  method?: string | undefined;
  endpoint?: string | undefined;
  status?: number | undefined;
  errorCode?: string | undefined;
  retryAfterMs?: number | undefined;
  cause?: unknown;
}

/**
 * Every failure of the MLflow client is an `MlflowError`. `retryable` says whether the sync worker may try
 * again later (network errors, timeouts, 408, 429, 5xx); everything else is final and is parked with
 * `message`, which keeps MLflow's own `error_code` and message.
 */
export class MlflowError extends Error {
  readonly kind: MlflowErrorKind;
  readonly retryable: boolean;
  readonly method: string | undefined;
  readonly endpoint: string | undefined;
  readonly status: number | undefined;
  /** MLflow's `error_code`, e.g. `INVALID_PARAMETER_VALUE`, when the body was MLflow JSON. */
  readonly errorCode: string | undefined;
  /** From a `Retry-After` header, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, init: MlflowErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'MlflowError';
    this.kind = init.kind;
    this.retryable = init.retryable;
    this.method = init.method;
    this.endpoint = init.endpoint;
    this.status = init.status;
    this.errorCode = init.errorCode;
    this.retryAfterMs = init.retryAfterMs;
  }
}

export function isMlflowError(e: unknown): e is MlflowError {
  return e instanceof MlflowError;
}

/** Statuses worth retrying: the Python client's set (408, 429, 500, 502, 503, 504) plus any other 5xx but 501. */
export function isRetryableStatus(status: number): boolean {
  if (status === 408 || status === 429) return true;
  return status >= 500 && status <= 599 && status !== 501;
}

/** Parses `Retry-After` (delta-seconds or an HTTP date) into milliseconds from `nowMs`. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  nowMs = Date.now(),
): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  const trimmed = v.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/** Plain-text answers that mean the server is set up wrongly: retrying cannot fix them. */
const CONFIG_TEXT = [
  {
    re: /Invalid Host header/i,
    hint: "MLflow's security middleware refused our Host header; add this host to the server's --allowed-hosts",
  },
  {
    re: /--no-serve-artifacts/i,
    hint: 'the tracking server runs with --no-serve-artifacts; start it with --serve-artifacts',
  },
  {
    re: /--artifacts-only/i,
    hint: 'the server runs with --artifacts-only; point MLFLOW_TRACKING_URI at a tracking server',
  },
];

/** Builds the error for an HTTP answer that was not 2xx. */
export function httpError(
  method: string,
  endpoint: string,
  status: number,
  body: string,
  retryAfterHeader: string | string[] | undefined,
): MlflowError {
  let errorCode: string | undefined;
  let detail = body.trim();
  let isJson = false;
  try {
    const parsed = JSON.parse(body) as { error_code?: unknown; message?: unknown };
    if (parsed && typeof parsed === 'object') {
      isJson = true;
      if (typeof parsed.error_code === 'string') errorCode = parsed.error_code;
      if (typeof parsed.message === 'string') detail = parsed.message;
    }
  } catch {
    // not JSON: a proxy page, the host-header 403, the no-serve-artifacts 503 …
  }
  if (detail.length > 2000) detail = `${detail.slice(0, 2000)}…`;
  let retryable = isRetryableStatus(status);
  let kind: MlflowErrorKind = 'http';
  let hint = '';
  if (!isJson) {
    for (const c of CONFIG_TEXT) {
      if (c.re.test(body)) {
        retryable = false;
        kind = 'config';
        hint = ` (${c.hint})`;
      }
    }
  }
  if (status === 401 || status === 403)
    hint ||= ' (check MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN)';
  const code = errorCode ? `${errorCode}: ` : '';
  return new MlflowError(`MLflow ${method} ${endpoint} failed with HTTP ${status}: ${code}${detail}${hint}`, {
    kind,
    retryable,
    method,
    endpoint,
    status,
    errorCode,
    retryAfterMs: parseRetryAfter(retryAfterHeader),
  });
}

/** Certificate problems: retrying cannot fix them, the TLS variables or the server's certificate must change. */
const TLS_CONFIG_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** Wraps a transport failure (no HTTP answer): retryable, except certificate verification failures. */
export function transportError(
  method: string,
  endpoint: string,
  cause: unknown,
  timedOut: boolean,
): MlflowError {
  const c = cause as { code?: string; message?: string; cause?: { code?: string } } | undefined;
  const code = c?.code ?? c?.cause?.code;
  const what = c?.code ? `${c.code}: ${c.message ?? ''}` : String(c?.message ?? cause);
  if (code && TLS_CONFIG_CODES.has(code)) {
    return new MlflowError(
      `MLflow ${method} ${endpoint} failed: TLS verification failed (${what}); check MLFLOW_TRACKING_SERVER_CERT_PATH / MLFLOW_TRACKING_INSECURE_TLS and the server's certificate`,
      { kind: 'config', retryable: false, method, endpoint, cause },
    );
  }
  return new MlflowError(
    timedOut
      ? `MLflow ${method} ${endpoint} timed out (${what})`
      : `MLflow ${method} ${endpoint} failed: cannot reach the server (${what})`,
    { kind: timedOut ? 'timeout' : 'network', retryable: true, method, endpoint, cause },
  );
}

/** True for MLflow's "Changing param values is not allowed" answer. */
export function isParamConflict(e: unknown): boolean {
  return (
    e instanceof MlflowError &&
    e.status === 400 &&
    /Changing param values is not allowed|already logged/i.test(e.message)
  );
}
