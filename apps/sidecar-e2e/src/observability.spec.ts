// What a platform scrapes and probes: Prometheus /metrics, /livez and /readyz on the HTTP listener,
// and the `liveness` / `readiness` gRPC health names — against the real sidecar process.
import { credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createClient, Status } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks, TrainingOutcome } from '@training-callbacks/proto';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { protoPath as healthProto } from 'grpc-health-check';
import { expect, it } from 'vitest';
import { parsePrometheusText, sample } from './prometheus-text.ts';

function healthClient(address: string) {
  const pkg = loadPackageDefinition(loadSync(healthProto, { enums: String })) as never as {
    grpc: { health: { v1: { Health: new (address: string, creds: unknown) => never } } };
  };
  const health = new pkg.grpc.health.v1.Health(address, credentials.createInsecure()) as {
    check(req: { service: string }, cb: (e: Error | null, r: { status: string }) => void): void;
    close(): void;
  };
  return {
    check: (service: string) =>
      new Promise<string>((resolve, reject) =>
        health.check({ service }, (e, r) => (e ? reject(e) : resolve(r.status))),
      ),
    close: () => health.close(),
  };
}

it('serves /metrics with RPC, ingest, rejection, job, outbox and database series', async () => {
  await using sidecar = await startSidecarProcess({ args: ['--quiet'] });
  expect(sidecar.httpAddress).toMatch(/^127\.0\.0\.1:\d+$/);
  const client = createClient(TrainingCallbacks, sidecar.address);
  await client.beginTraining({ jobId: 'm-1', taskType: TaskType.IMAGE_CLASSIFICATION });
  await client.beginTraining({ jobId: 'm-2', taskType: TaskType.IMAGE_CLASSIFICATION });
  for (let epoch = 0; epoch < 3; epoch++) {
    // eval_top1 (timm's name, in percent) means accuracy too: refused as a duplicate each time.
    await client.endEpoch({ jobId: 'm-1', epoch, metrics: { accuracy: 0.5 + epoch / 10, eval_top1: 50 } });
  }
  await client.endEpoch({ jobId: 'm-1', epoch: 3, metrics: { accuracy: 1.5 } }); // out of [0, 1]
  async function* blocks() {
    yield {
      jobId: 'm-1',
      blocks: [
        { epoch: 0, names: ['loss'], steps: [1n, 2n, 3n, 4n], values: [1, 0.9, 0.8, 0.7] },
        { epoch: 0, names: ['loss'], steps: [5n, 6n], values: [1] }, // wrong shape: refused
      ],
    };
  }
  const batch = await client.reportBatchMetrics(blocks());
  expect(batch.acceptedPoints).toBe(4n);
  // The same stream resent (the retry after a lost acknowledgement): acknowledged again, committed once.
  expect((await client.reportBatchMetrics(blocks())).acceptedPoints).toBe(4n);
  await client.endTraining({
    jobId: 'm-2',
    outcome: TrainingOutcome.COMPLETED,
    losses: { droppedPoints: 5n, failedWrites: 1n, reasons: ['buffer full'] },
  });
  await expect(client.getJob({ jobId: 'missing' })).rejects.toThrow();

  const response = await fetch(`http://${sidecar.httpAddress}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const series = parsePrometheusText(await response.text());
  const value = (name: string, labels: Record<string, string> = {}) => sample(series, name, labels);

  const rpc = { service: 'trainingcallbacks.v1.TrainingCallbacks' };
  expect(value('training_callbacks_rpc_requests_total', { ...rpc, method: 'EndEpoch', code: 'OK' })).toBe(4);
  expect(
    value('training_callbacks_rpc_requests_total', { ...rpc, method: 'GetJob', code: 'NOT_FOUND' }),
  ).toBe(1);
  expect(value('training_callbacks_rpc_duration_seconds_count', { ...rpc, method: 'BeginTraining' })).toBe(2);
  expect(
    value('training_callbacks_rpc_duration_seconds_bucket', { ...rpc, method: 'BeginTraining', le: '+Inf' }),
  ).toBe(2);
  expect(value('training_callbacks_epochs_ingested_total')).toBe(4);
  expect(value('training_callbacks_batch_points_ingested_total')).toBe(4);
  expect(value('training_callbacks_metrics_rejected_total', { source: 'batch', reason: 'block_shape' })).toBe(
    2, // refused in the resend too
  );
  expect(
    value('training_callbacks_metrics_rejected_total', { source: 'epoch', reason: 'duplicate_name' }),
  ).toBe(3);
  expect(
    value('training_callbacks_metrics_rejected_total', { source: 'epoch', reason: 'out_of_range' }),
  ).toBe(1);
  expect(value('training_callbacks_jobs', { status: 'running' })).toBe(1);
  expect(value('training_callbacks_jobs', { status: 'completed' })).toBe(1);
  expect(value('training_callbacks_jobs', { status: 'failed' })).toBe(0);
  // No MLflow configured: nothing queued.
  expect(value('training_callbacks_client_losses_total', { kind: 'dropped_points' })).toBe(5);
  expect(value('training_callbacks_client_losses_total', { kind: 'failed_writes' })).toBe(1);
  expect(value('training_callbacks_outbox_pending_items')).toBe(0);
  expect(value('training_callbacks_outbox_oldest_pending_timestamp_seconds')).toBe(0);
  expect(value('training_callbacks_mlflow_parked_jobs')).toBe(0);
  expect(value('training_callbacks_db_commit_duration_seconds_count', { operation: 'saveEpoch' })).toBe(4);
  expect(value('training_callbacks_process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
  // Low cardinality: no label anywhere carries a job id.
  for (const s of series) expect(Object.values(s.labels)).not.toContain('m-1');
  client.close();
});

it('counts running handlers in rpc_handlers_in_flight, also a cancelled stream until its handler has finished', async () => {
  await using sidecar = await startSidecarProcess({ args: ['--quiet'] });
  const client = createClient(TrainingCallbacks, sidecar.address);
  await client.beginTraining({ jobId: 'f-1', taskType: TaskType.IMAGE_CLASSIFICATION });
  const inFlight = async (method: string) =>
    sample(
      parsePrometheusText(await (await fetch(`http://${sidecar.httpAddress}/metrics`)).text()),
      'training_callbacks_rpc_handlers_in_flight',
      { service: 'trainingcallbacks.v1.TrainingCallbacks', method },
    );
  const until = async (method: string, value: number) => {
    for (const deadline = Date.now() + 10_000; (await inFlight(method)) !== value; ) {
      if (Date.now() > deadline) throw new Error(`${method} in flight stays ${await inFlight(method)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  expect(await inFlight('ReportBatchMetrics')).toBe(0);
  expect(await inFlight('BeginTraining')).toBe(0); // its call has finished

  // A stream whose client holds it open: its handler runs (waits for more) until the client ends it.
  async function* heldOpen(release: Promise<void>) {
    yield { jobId: 'f-1', blocks: [{ epoch: 0, names: ['loss'], steps: [1n], values: [0.5] }] };
    await release;
  }
  const { promise: ended, resolve: end } = Promise.withResolvers<void>();
  const answer = client.reportBatchMetrics(heldOpen(ended));
  await until('ReportBatchMetrics', 1);
  end();
  expect((await answer).acceptedPoints).toBe(1n);
  await until('ReportBatchMetrics', 0);

  // A cancelled stream counts until its handler has seen the cancel and returned.
  const abort = new AbortController();
  const never = new Promise<void>(() => {});
  const cancelled = client.reportBatchMetrics(heldOpen(never), { signal: abort.signal });
  await until('ReportBatchMetrics', 1);
  abort.abort();
  await expect(cancelled).rejects.toMatchObject({ code: Status.CANCELLED });
  await until('ReportBatchMetrics', 0);
  client.close();
});

it('answers /livez, /readyz and the liveness/readiness health names, and 404 for a file it does not have', async () => {
  await using sidecar = await startSidecarProcess({ args: ['--quiet'] });
  const base = `http://${sidecar.httpAddress}`;
  expect((await fetch(`${base}/livez`)).status).toBe(200);
  const ready = await fetch(`${base}/readyz`);
  expect([ready.status, await ready.text()]).toEqual([200, 'ready\n']);
  // (A path without an extension is the dashboard's: its index.html, for the page's own router.)
  expect((await fetch(`${base}/nothing-here.txt`)).status).toBe(404);
  expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  const health = healthClient(sidecar.address);
  expect(await health.check('liveness')).toBe('SERVING');
  expect(await health.check('readiness')).toBe('SERVING');
  expect(await health.check('')).toBe('SERVING');
  health.close();
});

it('serves no HTTP with --http off, and refuses a malformed --http', async () => {
  await using off = await startSidecarProcess({ args: ['--quiet', '--http', 'off'] });
  expect(off.httpAddress).toBeUndefined();
  expect(off.output.join('\n')).not.toContain('HTTP on');
  await expect(startSidecarProcess({ args: ['--http', 'localhost'] })).rejects.toThrow(
    /--http must be host:port or "off"/,
  );
});
