// The sidecar's log. Two formats of the same calls:
// - `text` (default): the readable lines a person watches on a terminal — the per-epoch line as it
//   always was; info and below on stdout, warnings and errors on stderr.
// - `json` (`--log-format json`): one JSON object per line from pino on stdout, for a log pipeline:
//   `level`, `time` (ISO 8601), `event` (what happened, a fixed name), `jobId` when the line is about
//   a job, further fields, and `msg` (the readable text).
// `--log-level` filters both.
import { pino } from 'pino';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Structured fields of a line. `event` names what happened; `jobId` is set on every line about a job. */
export interface LogFields {
  event: string;
  jobId?: string;
  [key: string]: unknown;
}

/** One level's log call: the readable message, and the fields JSON lines carry. */
export type LogFn = (message: string, fields?: LogFields) => void;

export interface SidecarLogger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
}

export interface LoggerOptions {
  format: LogFormat;
  level: LogLevel;
  /** Where lines go (default the process' stdout and stderr); tests pass their own. */
  stdout?: { write(chunk: string): unknown };
  stderr?: { write(chunk: string): unknown };
}

const RANK: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity };

export function createLogger(options: LoggerOptions): SidecarLogger {
  return options.format === 'json' ? jsonLogger(options) : textLogger(options);
}

function textLogger(options: LoggerOptions): SidecarLogger {
  const out = options.stdout ?? process.stdout;
  const err = options.stderr ?? process.stderr;
  const min = RANK[options.level];
  const at =
    (level: Exclude<LogLevel, 'silent'>, stream: { write(chunk: string): unknown }): LogFn =>
    (message) => {
      if (RANK[level] >= min) stream.write(`${message}\n`);
    };
  return { debug: at('debug', out), info: at('info', out), warn: at('warn', err), error: at('error', err) };
}

function jsonLogger(options: LoggerOptions): SidecarLogger {
  const logger = pino(
    {
      level: options.level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // An Error in the fields is written with its message and stack.
      serializers: { err: pino.stdSerializers.err },
    },
    // Synchronous writes: a line logged just before exit (a fatal start-up error) is not lost.
    options.stdout ?? pino.destination({ dest: 1, sync: true }),
  );
  const at =
    (level: Exclude<LogLevel, 'silent'>): LogFn =>
    (message, fields) =>
      fields ? logger[level](fields, message) : logger[level](message);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
