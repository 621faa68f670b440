// The connection flags of every client command, made from the settings of proto/client-connection.json
// (the names the TypeScript and Python clients take, their environment variables and meanings), and
// the client they open, through the TS client's own resolveConnection: same defaults, same precedence.
import {
  type ConnectionOptions,
  DEFAULT_CHANNEL_OPTIONS,
  RpcError,
  resolveConnection,
  type TrainingCallbacksClient,
} from '@training-callbacks/client';
import { createClient } from '@training-callbacks/grpc-adapter';
import {
  CONNECTION_ENV,
  CONNECTION_MEANING,
  type ConnectionSettingName,
  DEFAULT_SIDECAR_ADDRESS,
  TrainingCallbacks as TrainingCallbacksService,
} from '@training-callbacks/proto';
import { type Command, Option } from 'commander';
import { UsageError } from './exit-codes.ts';

const SETTINGS = Object.keys(CONNECTION_ENV) as ConnectionSettingName[];

/** `caFile` → `ca-file`. */
const flagOf = (name: ConnectionSettingName) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The default per-call deadline of the CLI's unary calls, in seconds. */
export const DEFAULT_TIMEOUT_S = 10;

/**
 * Adds `--address`, `--token`, `--token-file`, `--ca-file`, `--client-cert-file`, `--client-key-file`
 * and `--timeout`. The environment variables are not read by commander but by resolveConnection, so
 * that an option wins over every variable and a token over a token file, as in both clients.
 */
export function addConnectionOptions(command: Command): Command {
  for (const name of SETTINGS) {
    const value = name === 'address' ? 'ADDR' : name === 'token' ? 'TOKEN' : 'FILE';
    const fallback = name === 'address' ? `, else ${DEFAULT_SIDECAR_ADDRESS}` : '';
    command.addOption(
      new Option(
        `--${flagOf(name)} <${value}>`,
        `${CONNECTION_MEANING[name]} (default: $${CONNECTION_ENV[name]}${fallback})`,
      ).helpGroup('Connection:'),
    );
  }
  command.addOption(
    new Option('--timeout <S>', 'seconds to wait for each answer of the sidecar')
      .default(String(DEFAULT_TIMEOUT_S))
      .helpGroup('Connection:'),
  );
  return command;
}

/** A connected client and what the messages need to know about it. */
export interface CliConnection {
  readonly client: TrainingCallbacksClient;
  readonly address: string;
  readonly tls: boolean;
  /** Milliseconds per unary call. */
  readonly timeoutMs: number;
  /** The options as the TS client takes them (for TrainingCallbacks). */
  readonly options: ConnectionOptions;
}

/** Opens the client of a command's parsed options. Throws {@link UsageError} for unusable settings. */
export function openConnection(values: Record<string, unknown>, env: NodeJS.ProcessEnv): CliConnection {
  const options: Record<string, string> = {};
  for (const name of SETTINGS) {
    const value = values[name];
    if (typeof value === 'string' && value !== '') options[name] = value;
  }
  const timeout = Number(values.timeout ?? DEFAULT_TIMEOUT_S);
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new UsageError(`--timeout must be a positive number of seconds, got "${String(values.timeout)}"`);
  }
  let connection: ReturnType<typeof resolveConnection>;
  try {
    connection = resolveConnection(options, env);
  } catch (error) {
    // An unreadable CA or token file, a certificate without its key: nothing was sent.
    if (error instanceof RpcError) throw new UsageError(error.message);
    throw error;
  }
  const client = createClient(TrainingCallbacksService, connection.address, {
    credentials: connection.credentials,
    channelOptions: {
      ...DEFAULT_CHANNEL_OPTIONS,
      ...(connection.interceptor && { interceptors: [connection.interceptor] }),
    },
  });
  return { client, address: connection.address, tls: connection.tls, timeoutMs: timeout * 1000, options };
}
