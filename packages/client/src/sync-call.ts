// The exit paths that have no event loop left ('exit', a crash) still deliver the job's last words:
// a short-lived child Node process makes the calls with @grpc/grpc-js while this process waits for it
// (spawnSync), bounded by a timeout. The requests are encoded here; the child only moves bytes, and
// retries what the shared status table (proto/status-table.json) calls transient.
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
import type { EncodedCall } from './report-queue.ts';

const TRANSIENT_CODES = [...STATUS_CLASSES].filter(([, c]) => c === 'transient').map(([code]) => code);

// CommonJS, run with `node -e`; reads its input as JSON from stdin. Sends the reports in order (until
// half the time is spent), counts those that failed, then sends the EndTraining variant for that
// count (its losses include them). Exits 0 when EndTraining succeeded.
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
const started = Date.now();
const deadline = started + input.timeoutMs;
const reportsDeadline = started + input.timeoutMs / 2;
const metadata = new grpc.Metadata();
if (input.authorization) metadata.set(input.authorizationKey, input.authorization);
const same = (x) => x;
function unary(path, request, until, done) {
  const attempt = () =>
    client.makeUnaryRequest(path, same, same, Buffer.from(request, 'base64'), metadata,
      { deadline: Math.min(until, Date.now() + input.callMs), waitForReady: true }, (error) => {
        if (!error) return done();
        const marker = error.metadata ? String(error.metadata.get(input.retryKey)[0] ?? '') : '';
        const transient = marker === input.retryTransient || (marker !== input.retryPermanent && input.transientCodes.includes(error.code));
        if (transient && Date.now() + 100 < until) { setTimeout(attempt, 100); return; }
        done(error);
      });
  attempt();
}
let next = 0;
let failed = 0;
function step() {
  if (next < input.reports.length && Date.now() < reportsDeadline) {
    const report = input.reports[next++];
    unary(report.path, report.request, reportsDeadline, (error) => { if (error) failed++; step(); });
    return;
  }
  failed += input.reports.length - next;
  next = input.reports.length;
  unary(input.endPath, input.ends[failed], deadline, (error) => {
    if (!error) process.exit(0);
    process.stderr.write(String(error.code) + ' ' + (error.details || error.message));
    process.exit(3);
  });
}
step();
`;

function path(method: keyof (typeof Service)['method']): string {
  return `/${Service.typeName}/${Service.method[method].name}`;
}

/**
 * Sends `reports` in order, then EndTraining — `ends[k]`, the request whose losses count the `k`
 * reports that failed — synchronously, within `timeoutMs`. Returns undefined when EndTraining was
 * acknowledged, else what went wrong.
 */
export function sendReportsAndEndSync(
  connection: Connection,
  reports: readonly EncodedCall[],
  ends: readonly Uint8Array[],
  timeoutMs: number,
): string | undefined {
  const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
  const input = {
    grpcPath: createRequire(import.meta.url).resolve('@grpc/grpc-js'),
    address: connection.address,
    reports: reports.map((r) => ({ path: path(r.method), request: base64(r.request) })),
    endPath: path('endTraining'),
    ends: ends.map(base64),
    timeoutMs,
    callMs: Math.max(500, Math.floor(timeoutMs / 4)),
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
