import path from 'node:path';
import { parseArgs } from 'node:util';

/** Everything the sidecar can be told, from flags or environment. */
export interface SidecarConfig {
  /** Address to serve on: "host:port" (port 0 picks a free one) or "unix:/path/to.sock". */
  listen: string;
  /** SQLite database file (created with its directory when missing). */
  dbPath: string;
  /** Where uploaded and logged artifact files are kept. */
  artifactStore: string;
  /** Directories LogArtifact may read from (a volume shared with the trainer). Empty: path logging is off. */
  artifactRoots: string[];
  /** 'normal' survives a crash of the sidecar; 'full' also survives a power loss (an fsync per commit). */
  durability: 'normal' | 'full';
  /** Largest accepted gRPC message, in bytes. */
  maxMessageBytes: number;
  /** Print no per-epoch line. */
  quiet: boolean;
}

export const HELP = `training-callbacks sidecar — the TrainingCallbacks gRPC service next to a trainer

Usage: npm start -- [options]

Options (flag, environment variable, default):
  --listen ADDR            TRAINING_CALLBACKS_LISTEN          127.0.0.1:50051
                           host:port (port 0 = any free port) or unix:/path/to.sock
  --db PATH                TRAINING_CALLBACKS_DB              ./data/training-callbacks.sqlite
  --artifact-store DIR     TRAINING_CALLBACKS_ARTIFACT_STORE  <dir of --db>/artifacts
  --artifact-root DIR      TRAINING_CALLBACKS_ARTIFACT_ROOTS  (none: LogArtifact by path is refused)
                           repeatable; the env variable takes a ':'-separated list
  --durability MODE        TRAINING_CALLBACKS_DURABILITY      normal  (normal | full)
  --max-message-bytes N    TRAINING_CALLBACKS_MAX_MESSAGE_BYTES  16777216
  --quiet                  TRAINING_CALLBACKS_QUIET=1         print no per-epoch line
  -h, --help               show this help

The sidecar binds to loopback by default. It answers grpc.health.v1 health checks and serves
gRPC reflection. SIGTERM/SIGINT stop it gracefully (in-flight calls finish, the database closes).`;

/** Thrown for a bad flag or variable; main prints it with the help hint and exits 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses flags and environment. Returns undefined when --help was asked for. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): SidecarConfig | undefined {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const { values } = parsed;
  if (values.help) return undefined;
  const dbPath = path.resolve(values.db ?? env.TRAINING_CALLBACKS_DB ?? 'data/training-callbacks.sqlite');
  const durability = values.durability ?? env.TRAINING_CALLBACKS_DURABILITY ?? 'normal';
  if (durability !== 'normal' && durability !== 'full') {
    throw new ConfigError(`--durability must be "normal" or "full", got "${durability}"`);
  }
  const maxRaw = values['max-message-bytes'] ?? env.TRAINING_CALLBACKS_MAX_MESSAGE_BYTES ?? '16777216';
  const maxMessageBytes = Number(maxRaw);
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 65536) {
    throw new ConfigError(`--max-message-bytes must be an integer ≥ 65536, got "${maxRaw}"`);
  }
  const roots = values['artifact-root']?.length
    ? values['artifact-root']
    : (env.TRAINING_CALLBACKS_ARTIFACT_ROOTS ?? '').split(':').filter(Boolean);
  return {
    listen: values.listen ?? env.TRAINING_CALLBACKS_LISTEN ?? '127.0.0.1:50051',
    dbPath,
    artifactStore: path.resolve(
      values['artifact-store'] ??
        env.TRAINING_CALLBACKS_ARTIFACT_STORE ??
        path.join(path.dirname(dbPath), 'artifacts'),
    ),
    artifactRoots: roots.map((root) => path.resolve(root)),
    durability,
    maxMessageBytes,
    quiet: values.quiet ?? env.TRAINING_CALLBACKS_QUIET === '1',
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      listen: { type: 'string' },
      db: { type: 'string' },
      'artifact-store': { type: 'string' },
      'artifact-root': { type: 'string', multiple: true },
      durability: { type: 'string' },
      'max-message-bytes': { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
