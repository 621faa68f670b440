// The CLI's exit codes: one per thing a script (or a person) does differently next. `serve` exits with
// the sidecar's own codes (../exit-codes.ts), which this table includes so that the binary has one.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { EXIT_CODES as SIDECAR_EXIT_CODES } from '../exit-codes.ts';

/** Exit codes of `training-callbacks`, with what each means. */
export const CLI_EXIT_CODES = {
  ok: { code: 0, meaning: 'done (or --help)' },
  failure: {
    code: 1,
    meaning: 'any other failure (a bug if the sidecar answered INTERNAL); the message says what happened',
  },
  usage: {
    code: 2,
    meaning:
      'a bad command, flag, argument or environment variable, or an input file that cannot be read (nothing was sent)',
  },
  notFound: { code: 10, meaning: 'no such job on the sidecar (NOT_FOUND)' },
  unavailable: {
    code: 11,
    meaning: 'the sidecar could not be reached or did not answer in time (UNAVAILABLE, DEADLINE_EXCEEDED)',
  },
  permission: {
    code: 12,
    meaning: 'the sidecar wants a token (UNAUTHENTICATED) or this token may not do that (PERMISSION_DENIED)',
  },
  refused: {
    code: 13,
    meaning:
      'the sidecar refused the request (INVALID_ARGUMENT, FAILED_PRECONDITION, …; e.g. MLflow is not configured)',
  },
} as const;

/** A mistake of the caller found before anything was sent: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The exit-code table as `--help` prints it, with the `serve` codes of the sidecar. */
export function cliExitCodesHelp(): string {
  const line = (code: number, meaning: string) => `  ${String(code).padStart(2)}  ${meaning}`;
  const serveOnly = Object.values(SIDECAR_EXIT_CODES).filter(({ code }) => code > 2);
  return [
    ...Object.values(CLI_EXIT_CODES).map(({ code, meaning }) => line(code, meaning)),
    '  serve exits with the sidecar’s codes: 0, 1 and 2 as above, and',
    ...serveOnly.map(({ code, meaning }) => line(code, meaning)),
  ].join('\n');
}

/** Where the sidecar is, for the hints. */
export interface FailureContext {
  readonly address: string;
  readonly tls: boolean;
}

/** An error → the exit code and a message that says what to do next. */
export function describeFailure(error: unknown, context: FailureContext): { code: number; message: string } {
  if (error instanceof UsageError) return { code: CLI_EXIT_CODES.usage.code, message: error.message };
  if (!(error instanceof RpcError)) {
    return {
      code: CLI_EXIT_CODES.failure.code,
      message: error instanceof Error ? error.message : String(error),
    };
  }
  const said = `${error.codeName}: ${error.message}`;
  switch (error.code) {
    case Status.NOT_FOUND:
      return {
        code: CLI_EXIT_CODES.notFound.code,
        message: `${said}\nList the sidecar's jobs with \`training-callbacks jobs list\` (at ${context.address}).`,
      };
    case Status.UNAVAILABLE:
    case Status.DEADLINE_EXCEEDED:
      return {
        code: CLI_EXIT_CODES.unavailable.code,
        message:
          `cannot reach the sidecar at ${context.address} (${said}).\n` +
          'Is it running? Start one with `training-callbacks serve`, or point --address (or ' +
          `TRAINING_CALLBACKS_ADDRESS) at yours${context.tls ? '' : '; a sidecar with TLS also needs --ca-file'}.`,
      };
    case Status.UNAUTHENTICATED:
      return {
        code: CLI_EXIT_CODES.permission.code,
        message: `${said}\nGive a token of the sidecar's --auth-token-file: --token-file FILE or --token (or TRAINING_CALLBACKS_TOKEN_FILE / TRAINING_CALLBACKS_TOKEN).`,
      };
    case Status.PERMISSION_DENIED:
      return {
        code: CLI_EXIT_CODES.permission.code,
        message: `${said}\nThis needs a write token (a "write <token>" line of the sidecar's --auth-token-file); read tokens may only read.`,
      };
    case Status.INVALID_ARGUMENT:
    case Status.FAILED_PRECONDITION:
    case Status.OUT_OF_RANGE:
    case Status.ALREADY_EXISTS:
    case Status.RESOURCE_EXHAUSTED:
      return { code: CLI_EXIT_CODES.refused.code, message: said };
    default:
      return { code: CLI_EXIT_CODES.failure.code, message: said };
  }
}
