// One unary call made synchronously, for the exit paths that have no event loop left ('exit', a
// crash): a short-lived child Node process makes the call with @grpc/grpc-js while this process
// waits for it (spawnSync), bounded by a timeout. The request is encoded here; the child only moves
// bytes, and retries what the shared status table (proto/status-table.json) calls transient.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import {
  RETRY_METADATA_KEY,
  RETRY_PERMANENT,
  RETRY_TRANSIENT,
  TrainingCallbacks as Service,
  STATUS_CLASSES,
} from '@training-callbacks/proto';
import type { Connection } from './connection.ts';

const TRANSIENT_CODES = [...STATUS_CLASSES].filter(([, c]) => c === 'transient').map(([code]) => code);

// CommonJS, run with `node -e`: reads its input as JSON from stdin, exits 0 when the call succeeded.
const CHILD = `
const input = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
const grpc = require(input.grpcPath);
const pem = (s) => (s ? Buffer.from(s, 'base64') : null);
const credentials = input.ca
  ? grpc.credentials.createSsl(pem(input.ca), pem(input.key), pem(input.cert))
  : grpc.credentials.createInsecure();
const client = new grpc.Client(input.address, credentials, {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 500,
});
const deadline = Date.now() + input.timeoutMs;
const metadata = new grpc.Metadata();
if (input.authorization) metadata.set(input.authorizationKey, input.authorization);
const same = (x) => x;
const attempt = () =>
  client.makeUnaryRequest(input.path, same, same, Buffer.from(input.request, 'base64'), metadata,
    { deadline: Math.min(deadline, Date.now() + input.callMs), waitForReady: true }, (error) => {
      if (!error) process.exit(0);
      const marker = error.metadata ? String(error.metadata.get(input.retryKey)[0] ?? '') : '';
      const transient = marker === input.retryTransient || (marker !== input.retryPermanent && input.transientCodes.includes(error.code));
      if (transient && Date.now() + 100 < deadline) { setTimeout(attempt, 100); return; }
      process.stderr.write(String(error.code) + ' ' + (error.details || error.message));
      process.exit(3);
    });
attempt();
`;

/**
 * Calls `method` of the TrainingCallbacks service with the encoded `request`, synchronously, within
 * `timeoutMs`. Returns undefined on success, else what went wrong.
 */
export function callUnarySync(
  connection: Connection,
  method: keyof (typeof Service)['method'],
  request: Uint8Array,
  timeoutMs: number,
): string | undefined {
  const desc = Service.method[method];
  const input = {
    grpcPath: createRequire(import.meta.url).resolve('@grpc/grpc-js'),
    address: connection.address,
    path: `/${Service.typeName}/${desc.name}`,
    request: Buffer.from(request).toString('base64'),
    timeoutMs,
    callMs: Math.max(500, Math.floor(timeoutMs / 2)),
    authorizationKey: connection.authorization?.key,
    authorization: connection.authorization?.value,
    ca: connection.tlsFiles?.ca.toString('base64'),
    key: connection.tlsFiles?.key?.toString('base64'),
    cert: connection.tlsFiles?.cert?.toString('base64'),
    retryKey: RETRY_METADATA_KEY,
    retryTransient: RETRY_TRANSIENT,
    retryPermanent: RETRY_PERMANENT,
    transientCodes: TRANSIENT_CODES,
  };
  const child = spawnSync(process.execPath, ['-e', CHILD], {
    input: JSON.stringify(input),
    timeout: timeoutMs + 1000, // the child's own deadline is timeoutMs; this bounds its start-up too
    encoding: 'utf8',
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  if (child.error) return child.error.message;
  if (child.status === 0) return undefined;
  return child.stderr.trim() || `the helper process ended with ${child.signal ?? child.status}`;
}
