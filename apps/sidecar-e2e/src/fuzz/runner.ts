// Runs fuzz cases against one real sidecar process and judges every answer:
// - no INTERNAL (nor UNKNOWN, DATA_LOSS, UNIMPLEMENTED) answer, and no hang (DEADLINE_EXCEEDED);
// - an undecodable request is answered INVALID_ARGUMENT;
// - a refused call (and every read) leaves the SQLite file unchanged (see digest.ts) and the files
//   of the data directory too; the database file is never replaced;
// - an accepted write reads back through the read RPCs as it was acknowledged;
// - the process stays up and grpc.health.v1 keeps answering SERVING.
// Findings are collected (deduplicated by RPC, status and the message's shape), not thrown, so one
// run lists everything it found; the spec asserts the list is empty at the end.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  create,
  type DescMessage,
  type DescMethod,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import {
  type EndTrainingRequest,
  type Job,
  JobStatus,
  MetricFormat,
  MetricTier,
  TrainingCallbacks,
  type UploadArtifactRequest,
} from '@training-callbacks/proto';
import type { SidecarProcess } from '@training-callbacks/sidecar/testing';
import { ON_POSTGRES } from '../database.ts';
import type { BatchBlockCase, Mutation } from './arbitraries.ts';
import { type DatabaseWatch, listFiles, watchDatabase } from './digest.ts';
import { handlersInFlight, healthStatus, type Outcome, RawClient } from './wire.ts';

type Methods = typeof TrainingCallbacks.method;
export type MethodName = keyof Methods;
type Req<M extends MethodName> = MessageShape<Methods[M]['input']>;
type Res<M extends MethodName> = MessageShape<Methods[M]['output']>;
type ReqInit<M extends MethodName> = MessageInitShape<Methods[M]['input']>;

/** Statuses that are never a proper answer to any input. */
const BUG_STATUSES = new Set(['INTERNAL', 'UNKNOWN', 'DATA_LOSS', 'UNIMPLEMENTED', 'DEADLINE_EXCEEDED']);
const HEALTH_EVERY = 25;
/** How long a cut call's handler may take to finish after the cancel (the calls' own deadline). */
const CUT_HANDLER_WAIT_MS = 15_000;

export interface Finding {
  readonly rpc: string;
  readonly what: string;
  readonly answer: string;
  readonly input: string;
  readonly count: number;
}

/** BeginTraining's trainer as comparable text (absent: ''). */
function trainerText(t: Job['trainer']): string {
  return t ? `${t.pid}/${t.startTimeTicks}/${t.hostname}/${t.bootId}/${t.sessionId}` : '';
}

/** A short, printable view of a request for a finding's report. */
function show(value: unknown, max = 600): string {
  const text = JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    if (v instanceof Uint8Array)
      return `<${v.byteLength} bytes ${Buffer.from(v.subarray(0, 24)).toString('hex')}…>`;
    if (typeof v === 'string' && v.length > 80) return `${v.slice(0, 60)}…(${v.length} chars)`;
    return v;
  });
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The shape of a status message with the variable parts (quoted values, numbers) taken out. */
const shapeOf = (message: string) =>
  message
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\d+/g, 'N')
    .slice(0, 120);

function decode<S extends DescMessage>(schema: S, bytes: Uint8Array): MessageShape<S> | undefined {
  try {
    return fromBinary(schema, bytes);
  } catch {
    return undefined;
  }
}

/**
 * A sent value as the database keeps it: on PostgreSQL, which cannot store U+0000 in text or jsonb, the
 * store keeps U+FFFD in its place (packages/store README), in strings and in JSON keys; SQLite keeps it.
 */
export function asStored(value: unknown): unknown {
  if (!ON_POSTGRES) return value;
  if (typeof value === 'string') return value.replaceAll('\u0000', '\uFFFD');
  if (Array.isArray(value)) return value.map(asStored);
  if (value !== null && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    const out: Record<string, unknown> = proto === null ? Object.create(null) : {};
    // defineProperty: a key `__proto__` stays an own key, as it is in the sent value.
    for (const [k, v] of Object.entries(value))
      Object.defineProperty(out, asStored(k) as string, {
        value: asStored(v),
        enumerable: true,
        writable: true,
      });
    return out;
  }
  return value;
}

/** Deep equality with Object.is at the leaves (so NaN equals NaN and -0 differs from 0). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameValue((a as never)[k], (b as never)[k]));
}

const ms = (t: { seconds: bigint; nanos: number } | undefined) =>
  t === undefined ? undefined : Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);

/** Applies a byte-level mutation to an encoded message. */
/**
 * The right refusal of undecodable bytes: INVALID_ARGUMENT, or — when the bytes are also over the
 * message limit — grpc-js's RESOURCE_EXHAUSTED, which it answers before anything is decoded.
 */
function refusedUndecodable(outcome: Outcome & { ok: false }): boolean {
  if (outcome.codeName === 'INVALID_ARGUMENT') return true;
  return outcome.codeName === 'RESOURCE_EXHAUSTED' && /larger than max/.test(outcome.message);
}

export function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  switch (m.kind) {
    case 'truncate':
      return bytes.slice(0, m.at % (bytes.length + 1));
    case 'flip': {
      if (bytes.length === 0) return Uint8Array.of(m.bits);
      const copy = bytes.slice();
      copy[m.at % copy.length]! ^= m.bits;
      return copy;
    }
    case 'random':
      return m.bytes;
    case 'append':
      return Buffer.concat([bytes, m.bytes]);
    case 'badUtf8': // field 1 as a length-delimited value that is not UTF-8
      return Buffer.concat([bytes, Uint8Array.of(0x0a, 0x02, 0xc3, 0x28)]);
    case 'wrongWireType': // field 1 as a fixed32
      return Buffer.concat([bytes, Uint8Array.of(0x0d, 1, 2, 3, 4)]);
    case 'unknownField': // field 1000, a varint: must be ignored
      return Buffer.concat([bytes, new BinaryWriter().tag(1000, WireType.Varint).uint32(1).finish()]);
  }
}

export class FuzzRunner {
  readonly client: RawClient;
  readonly watch: DatabaseWatch;
  readonly counts = new Map<string, number>();
  readonly #findings = new Map<string, { finding: Omit<Finding, 'count'>; count: number }>();
  #cases = 0;
  /** Cut (client-cancelled) stream calls judged, by RPC. */
  readonly cutCalls = new Map<string, number>();
  /** Cut streams the sidecar had read to their end and stored before the cancel arrived, by RPC. */
  readonly cutStreamsStored = new Map<string, number>();
  #freshEpoch = 1_000_000;
  readonly #onFinding: (f: Finding) => void;

  readonly sidecar: SidecarProcess;
  readonly artifactRoot: string;

  /** A runner against `sidecar`, watching its database (a SQLite file or a PostgreSQL database). */
  static async start(
    sidecar: SidecarProcess,
    artifactRoot: string,
    onFinding: (f: Finding) => void = () => {},
  ): Promise<FuzzRunner> {
    return new FuzzRunner(sidecar, artifactRoot, await watchDatabase(sidecar.dbPath), onFinding);
  }

  private constructor(
    sidecar: SidecarProcess,
    artifactRoot: string,
    watch: DatabaseWatch,
    onFinding: (f: Finding) => void,
  ) {
    this.sidecar = sidecar;
    this.artifactRoot = artifactRoot;
    this.client = new RawClient(sidecar.address);
    this.watch = watch;
    this.#onFinding = onFinding;
  }

  get cases(): number {
    return this.#cases;
  }

  findings(): Finding[] {
    return [...this.#findings.values()].map(({ finding, count }) => ({ ...finding, count }));
  }

  async close(): Promise<void> {
    this.client.close();
    await this.watch.close();
  }

  #find(rpc: string, what: string, answer: string, input: unknown): void {
    // Status answers are told apart by their message's shape; read-back mismatches by what differs.
    const key = what.startsWith('answered') ? `${rpc}|${what}|${shapeOf(answer)}` : `${rpc}|${what}`;
    const known = this.#findings.get(key);
    if (known) {
      known.count++;
      return;
    }
    const finding = { rpc, what, answer, input: show(input) };
    this.#findings.set(key, { finding, count: 1 });
    this.#onFinding({ ...finding, count: 1 });
  }

  #path(name: MethodName): string {
    return `/${TrainingCallbacks.typeName}/${TrainingCallbacks.method[name].name}`;
  }

  /** Encodes, optionally mutates, and sends a unary request; returns what was decoded locally too. */
  async #unary<M extends MethodName>(name: M, init: ReqInit<M>, m?: Mutation) {
    const method = TrainingCallbacks.method[name] as DescMethod;
    let bytes: Uint8Array = toBinary(method.input, create(method.input, init as never));
    if (m) bytes = mutate(bytes, m);
    const request = decode(method.input, bytes) as Req<M> | undefined;
    const outcome =
      method.methodKind === 'server_streaming'
        ? await this.client.serverStreamFirst(this.#path(name), bytes)
        : await this.client.unary(this.#path(name), bytes);
    return { request, outcome, bytes };
  }

  #response<M extends MethodName>(name: M, outcome: Outcome & { ok: true }): Res<M> | undefined {
    return decode(TrainingCallbacks.method[name].output as DescMessage, outcome.bytes) as Res<M> | undefined;
  }

  /** A typed read used by the oracles; a failure of the read itself is a finding. */
  async read<M extends MethodName>(name: M, init: ReqInit<M>): Promise<Res<M> | undefined> {
    const { outcome } = await this.#unary(name, init);
    if (!outcome.ok) {
      this.#find(
        name,
        'a read-back of an accepted write failed',
        `${outcome.codeName}: ${outcome.message}`,
        init,
      );
      return undefined;
    }
    return this.#response(name, outcome);
  }

  /**
   * The checks every case shares: the answer's status, decodability, and for a refusal (or a read)
   * an unchanged database. Returns the decoded response when the call was accepted.
   */
  async #judge<M extends MethodName>(
    name: M,
    input: unknown,
    request: unknown,
    outcome: Outcome,
    files: string[] | undefined,
    opts: { write: boolean; cut?: boolean; mutation?: Mutation | undefined },
  ): Promise<Res<M> | undefined> {
    this.#cases++;
    if (opts.mutation) input = { mutation: opts.mutation, request: input };
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    if (!outcome.ok) {
      const answer = `${outcome.codeName}: ${outcome.message}`;
      if (BUG_STATUSES.has(outcome.codeName)) this.#find(name, `answered ${outcome.codeName}`, answer, input);
      else if (request === undefined && !opts.cut && !refusedUndecodable(outcome))
        this.#find(name, 'undecodable request not answered INVALID_ARGUMENT', answer, input);
      else if (!opts.write && outcome.codeName === 'RESOURCE_EXHAUSTED')
        this.#find(name, 'a read cannot be answered within the message limit', answer, input);
      else if (!opts.cut && outcome.message.trim() === '')
        this.#find(name, 'refused without a message', answer, input);
    } else if (request === undefined) {
      this.#find(name, 'undecodable request answered OK', 'OK', input);
    }
    if (!outcome.ok || !opts.write) {
      if (opts.cut) await this.#cutCallFinished(name, input);
      const changed = await this.watch.unchanged();
      const storedBeforeCancel =
        changed !== undefined && opts.cut && opts.write && !outcome.ok && outcome.codeName === 'CANCELLED';
      if (storedBeforeCancel) {
        // The client cancelled after its last message; grpc-js sends END_STREAM before RST_STREAM, so the
        // sidecar may have read a complete stream (a batch stream's prefix, or an upload whose header and
        // content agree) and committed it before the cancel arrived. The proto allows exactly that for
        // ReportBatchMetrics ("like an acknowledgement lost on the way; resending stores nothing twice",
        // which the batchResend generator checks), and the server adapter documents it for every client
        // stream (grpc-adapter's decodedStream): counted, and judged as an accepted call.
        this.cutStreamsStored.set(name, (this.cutStreamsStored.get(name) ?? 0) + 1);
        if (files !== undefined) this.#checkAcceptedFiles(name, files, input);
      } else if (changed)
        this.#find(
          name,
          outcome.ok ? 'a read changed the database' : 'a refused call changed the database',
          changed,
          input,
        );
      if (!storedBeforeCancel && files !== undefined && this.#files().join('\n') !== files.join('\n')) {
        const was = new Set(files);
        const left = this.#files().filter((f) => !was.has(f));
        this.#find(
          name,
          'a refused call left files behind',
          `${outcome.ok ? 'OK' : outcome.codeName} ${show(left, 200)}`,
          input,
        );
      }
    } else {
      await this.watch.end();
      if (!this.watch.sameFile()) this.#find(name, 'the database file was replaced', 'OK', input);
      if (files !== undefined) this.#checkAcceptedFiles(name, files, input);
    }
    await this.#alive(name, input);
    if (!outcome.ok) return undefined;
    const response = this.#response(name, outcome);
    if (response === undefined) this.#find(name, 'the response does not decode', 'OK', input);
    return response;
  }

  /** An accepted artifact call writes inside the artifact store only (`files`: as before the call). */
  #checkAcceptedFiles(name: MethodName, files: string[], input: unknown): void {
    const after = this.#files();
    const was = new Set(files);
    const now = new Set(after);
    const changed = [...after.filter((f) => !was.has(f)), ...files.filter((f) => !now.has(f))];
    const outside = changed.filter((f) => !f.startsWith(`artifacts${path.sep}`));
    if (outside.length > 0)
      this.#find(name, 'an accepted call wrote outside the artifact store', show(outside, 200), input);
  }

  /**
   * Waits until the handler of a cut (client-cancelled) call has finished. The client's cancel ends its
   * own call at once, but the sidecar's handler may still be reading the stream, committing what it read
   * (allowed: see ReportBatchMetrics), or removing an upload's staging file; judged earlier, that work
   * would land after the look and be blamed on the next case. First a health call on the same channel:
   * its answer comes after the sidecar processed every frame sent before it — the cut call's headers
   * too, so its handler has started by then if it ever will (grpc-js calls it synchronously on the
   * HTTP/2 stream's arrival). Then the sidecar's own count of running handlers, until it is 0 (cases
   * run one at a time, so no other handler of this method runs).
   */
  async #cutCallFinished(name: MethodName, input: unknown): Promise<void> {
    this.cutCalls.set(name, (this.cutCalls.get(name) ?? 0) + 1);
    await healthStatus(this.client);
    const method = TrainingCallbacks.method[name].name;
    const httpAddress = this.sidecar.httpAddress;
    if (httpAddress === undefined) throw new Error('the fuzz sidecar needs its HTTP listener (/metrics)');
    for (const until = Date.now() + CUT_HANDLER_WAIT_MS; ; await new Promise((r) => setTimeout(r, 5))) {
      const running = await handlersInFlight(httpAddress, TrainingCallbacks.typeName, method);
      if (running === 0) return;
      if (Date.now() >= until) {
        this.#find(
          name,
          `a cut call's handler is still running ${CUT_HANDLER_WAIT_MS / 1000} s after the cancel`,
          `${running} in flight`,
          input,
        );
        return;
      }
    }
  }

  /** The files of the data directory (SQLite's own excluded) and of the trainer's artifact root. */
  #files(): string[] {
    const data = listFiles(this.sidecar.dataDir, (name) => name.startsWith('training-callbacks.sqlite'));
    const root = listFiles(this.artifactRoot, () => false);
    return [...data, ...root.map((line) => `<artifact root>/${line}`)];
  }

  async #alive(rpc: string, input: unknown): Promise<void> {
    if (this.sidecar.child.exitCode !== null || this.sidecar.child.signalCode !== null) {
      this.#find(
        rpc,
        'the sidecar process died',
        String(this.sidecar.child.exitCode ?? this.sidecar.child.signalCode),
        input,
      );
      throw new Error(`the sidecar died:\n${this.sidecar.output.slice(-20).join('\n')}`);
    }
    if (this.#cases % HEALTH_EVERY === 0) await this.checkHealth(rpc, input);
  }

  async checkHealth(rpc = 'health', input: unknown = ''): Promise<void> {
    for (const service of ['', TrainingCallbacks.typeName]) {
      const status = await healthStatus(this.client, service);
      if (status !== 1) this.#find(rpc, `health of "${service}" is not SERVING`, String(status), input);
    }
  }

  #note(rpc: string, what: string, detail: string, input: unknown): void {
    this.#find(rpc, what, detail, input);
  }

  // ---- one method per RPC: send, judge, read back ----

  async beginTraining(init: ReqInit<'beginTraining'>, m?: Mutation): Promise<void> {
    await this.watch.begin();
    const { request, outcome } = await this.#unary('beginTraining', init, m);
    const res = await this.#judge('beginTraining', init, request, outcome, undefined, {
      write: true,
      mutation: m,
    });
    if (!res || !request) return;
    const stored = (await this.read('getJob', { jobId: request.jobId }))?.job;
    const expect: Array<[string, unknown, unknown]> = [
      ['status', JobStatus.RUNNING, stored?.status],
      ['task_type', request.taskType, stored?.taskType],
      // A resumed job keeps the framework and model it was begun with.
      ...(res.resumed
        ? []
        : ([
            ['framework', request.framework, stored?.framework],
            ['model_name', request.modelName, stored?.modelName],
          ] as Array<[string, unknown, unknown]>)),
      ['start_epoch', request.startEpoch, stored?.startEpoch],
      ['params', request.params, stored?.params],
      ['model_config', request.modelConfig ?? {}, stored?.modelConfig ?? {}],
      ['training_config', request.trainingConfig ?? {}, stored?.trainingConfig ?? {}],
      ['custom_metrics', request.customMetrics.map((c) => c.name), stored?.customMetrics.map((c) => c.name)],
      ['params as answered', res.job?.params, stored?.params],
      ['run_name', request.runName, stored?.runName],
      ['tags', request.tags, stored?.tags],
      ['trainer', trainerText(request.trainer), trainerText(stored?.trainer)],
    ];
    const unknownFormat = request.customMetrics.find(
      (d) => !(Object.values(MetricFormat) as number[]).includes(d.format),
    );
    if (unknownFormat)
      this.#note(
        'beginTraining',
        'an unknown enum number was accepted',
        `custom_metrics format ${unknownFormat.format}`,
        init,
      );
    for (const [field, sent, back] of expect) {
      if (!sameValue(asStored(sent), back))
        this.#note(
          'beginTraining',
          `accepted ${field} reads back differently`,
          `sent ${show(sent, 200)}, read ${show(back, 200)}`,
          init,
        );
    }
  }

  async beginEpoch(init: ReqInit<'beginEpoch'>, m?: Mutation): Promise<void> {
    await this.watch.begin();
    const t0 = Date.now();
    const { request, outcome } = await this.#unary('beginEpoch', init, m);
    const res = await this.#judge('beginEpoch', init, request, outcome, undefined, {
      write: true,
      mutation: m,
    });
    if (!res || !request) return;
    // A begun epoch shows (began_at) once it has ended; check it when it has.
    const epochs = (await this.read('listEpochs', { jobId: request.jobId }))?.epochs ?? [];
    const record = epochs.find((e) => e.epoch === request.epoch);
    const began = ms(record?.beganAt);
    const sent = ms(request.timestamp);
    if (
      record &&
      (sent !== undefined
        ? began === undefined || Math.abs(began - sent) > 1
        : began === undefined || began < t0 - 1 || began > Date.now() + 1)
    )
      this.#note(
        'beginEpoch',
        'accepted began_at reads back differently',
        `sent ${sent}, read ${began}`,
        init,
      );
  }

  async endEpoch(init: ReqInit<'endEpoch'>, m?: Mutation): Promise<void> {
    await this.watch.begin();
    const t0 = Date.now();
    const { request, outcome } = await this.#unary('endEpoch', init, m);
    const t1 = Date.now();
    const res = await this.#judge('endEpoch', init, request, outcome, undefined, {
      write: true,
      mutation: m,
    });
    if (!res || !request) return;
    const reported = Object.keys(request.metrics);
    if (res.verdicts.length !== reported.length)
      this.#note(
        'endEpoch',
        'not one verdict per reported metric',
        `${reported.length} reported, ${res.verdicts.length} verdicts`,
        init,
      );
    const expected: Record<string, number> = Object.create(null);
    for (const v of res.verdicts) if (v.tier !== MetricTier.REJECTED) expected[v.name] = v.value;
    const epochs = (await this.read('listEpochs', { jobId: request.jobId }))?.epochs ?? [];
    const record = epochs.find((e) => e.epoch === request.epoch);
    if (!record) {
      this.#note(
        'endEpoch',
        'an acknowledged epoch is missing from ListEpochs',
        `epoch ${request.epoch}`,
        init,
      );
      return;
    }
    if (!sameValue({ ...expected }, { ...record.metrics }))
      this.#note(
        'endEpoch',
        'accepted metrics read back differently',
        `acknowledged ${show(expected, 200)}, read ${show(record.metrics, 200)}`,
        init,
      );
    const sent = ms(request.timestamp);
    const stored = ms(record.timestamp);
    // The store keeps milliseconds: a sent sub-millisecond part may round either way.
    if (
      sent !== undefined
        ? stored === undefined || Math.abs(stored - sent) > 1
        : stored === undefined || stored < t0 - 1 || stored > t1 + 1
    )
      this.#note(
        'endEpoch',
        'accepted timestamp reads back differently',
        `sent ${sent ?? 'none'}, read ${stored}`,
        init,
      );
  }

  async reportBatchMetrics(
    input: {
      jobId: string;
      messages: { jobId: string; blocks: BatchBlockCase[] }[];
      resendAsOtherCut: boolean;
    },
    m: Mutation | undefined,
    cut: number | undefined,
  ): Promise<void> {
    const fresh = this.#freshEpoch++;
    const blocks = (list: BatchBlockCase[]) =>
      list.map((b) => ({ ...b, epoch: b.epoch === 'fresh' ? fresh : b.epoch }));
    const inits = input.messages.map((msg) => ({
      jobId: msg.jobId === 'same' ? input.jobId : msg.jobId,
      blocks: blocks(msg.blocks),
    }));
    const outcome = await this.#stream('reportBatchMetrics', inits, m, cut);
    const res = await this.#judge(
      'reportBatchMetrics',
      { m, cut, ...input },
      outcome.decodable ? inits : undefined,
      outcome.outcome,
      undefined,
      {
        write: true,
        cut: cut !== undefined,
      },
    );
    if (!res || !outcome.decodable || m || inits.length === 0) return;
    const all = inits.flatMap((i) => i.blocks);
    const sentValues = all.reduce((n, b) => n + b.values.length, 0);
    if (Number(res.acceptedPoints + res.rejectedPoints) !== sentValues)
      this.#note(
        'reportBatchMetrics',
        'accepted + rejected ≠ points sent',
        `${res.acceptedPoints} + ${res.rejectedPoints} vs ${sentValues}`,
        input,
      );
    const jobId = inits[0]?.jobId ?? '';
    const listed = async () =>
      ((await this.read('listBatchMetrics', { jobId, epoch: fresh }))?.blocks ?? []).flatMap((b) =>
        b.steps.flatMap((s, row) =>
          b.names.map((n, c) => ({ key: `${n}\u0000${s}`, value: b.values[row * b.names.length + c] })),
        ),
      );
    const points = await listed();
    const allFresh = all.every((b) => b.epoch === fresh);
    const steps = all.flatMap((b) => b.steps);
    if (points.length > Number(res.acceptedPoints))
      this.#note(
        'reportBatchMetrics',
        'more points stored than acknowledged',
        `${points.length} > ${res.acceptedPoints}`,
        input,
      );
    if (allFresh && new Set(steps).size === steps.length && points.length !== Number(res.acceptedPoints))
      this.#note(
        'reportBatchMetrics',
        'acknowledged points do not read back',
        `${res.acceptedPoints} acknowledged, ${points.length} listed`,
        input,
      );
    if (input.resendAsOtherCut && allFresh && points.length > 0) {
      // The same points again, one row per block: the store must still hold each (name, step) once.
      const rows = all.flatMap((b) =>
        b.steps.map((s, row) => ({
          epoch: fresh,
          names: b.names,
          steps: [s],
          values: b.values.slice(row * b.names.length, (row + 1) * b.names.length),
        })),
      );
      const again = await this.#stream('reportBatchMetrics', [{ jobId, blocks: rows }], undefined, undefined);
      if (again.outcome.ok) {
        const after = await listed();
        const distinct = new Set(after.map((p) => p.key)).size;
        if (distinct !== after.length)
          this.#note(
            'reportBatchMetrics',
            'a resend in another block cut is stored twice',
            `${after.length} points for ${distinct} (name, step)`,
            input,
          );
      }
    }
  }

  /** Sends a client stream of typed messages (the first one mutated if asked, cut if asked). */
  async #stream<M extends 'reportBatchMetrics' | 'uploadArtifact'>(
    name: M,
    inits: ReqInit<M>[],
    m: Mutation | undefined,
    cut: number | undefined,
  ) {
    const method = TrainingCallbacks.method[name] as DescMethod;
    const messages = inits.map(
      (init) => toBinary(method.input, create(method.input, init as never)) as Uint8Array,
    );
    if (m && messages.length > 0) messages[0] = mutate(messages[0]!, m);
    const decodable = messages.every((b) => decode(method.input, b) !== undefined);
    await this.watch.begin();
    const cutAfter = cut === undefined ? undefined : Math.floor(cut * messages.length);
    const outcome = await this.client.clientStream(this.#path(name), {
      messages,
      ...(cutAfter !== undefined && { cutAfter }),
    });
    return { outcome, decodable };
  }

  async endTraining(init: ReqInit<'endTraining'>, m?: Mutation): Promise<void> {
    const before = typeof init.jobId === 'string' && !m ? await this.#peekJob(init.jobId) : undefined;
    await this.watch.begin();
    const { request, outcome } = await this.#unary('endTraining', init, m);
    const res = await this.#judge('endTraining', init, request, outcome, undefined, {
      write: true,
      mutation: m,
    });
    if (!res || !request) return;
    const stored = (await this.read('getJob', { jobId: request.jobId }))?.job;
    const status = { 1: JobStatus.COMPLETED, 2: JobStatus.FAILED, 3: JobStatus.CANCELLED }[
      request.outcome as 1 | 2 | 3
    ];
    if (stored?.status !== status)
      this.#note(
        'endTraining',
        'accepted outcome reads back differently',
        `outcome ${request.outcome}, status ${stored?.status}`,
        init,
      );
    if (before?.status !== JobStatus.RUNNING) return; // an idempotent repeat: nothing new is stored
    this.#checkEnded(request, res.verdicts, stored, init);
  }

  #checkEnded(
    request: EndTrainingRequest,
    verdicts: Res<'endTraining'>['verdicts'],
    stored: Job | undefined,
    init: unknown,
  ): void {
    const message = asStored(request.errorMessage) as string;
    const back = stored?.errorMessage ?? '';
    if (!(back === message || (message.length > 16384 && back.startsWith(message.slice(0, 16384)))))
      this.#note(
        'endTraining',
        'accepted error_message reads back differently',
        `sent ${show(message, 100)}, read ${show(back, 100)}`,
        init,
      );
    const expected: Record<string, number> = Object.create(null);
    for (const v of verdicts) if (v.tier !== MetricTier.REJECTED) expected[v.name] = v.value;
    if (!sameValue({ ...expected }, { ...stored?.finalMetrics }))
      this.#note(
        'endTraining',
        'accepted final_metrics read back differently',
        `acknowledged ${show(expected, 200)}, read ${show(stored?.finalMetrics, 200)}`,
        init,
      );
  }

  async #peekJob(jobId: string): Promise<Job | undefined> {
    const { outcome } = await this.#unary('getJob', { jobId });
    return outcome.ok ? this.#response('getJob', outcome)?.job : undefined;
  }

  async logArtifact(init: ReqInit<'logArtifact'>, m?: Mutation): Promise<void> {
    await this.watch.begin();
    const files = this.#files();
    const { request, outcome } = await this.#unary('logArtifact', init, m);
    const res = await this.#judge('logArtifact', init, request, outcome, files, {
      write: true,
      mutation: m,
    });
    if (!res || !request) return;
    const listed = (await this.read('listArtifacts', { jobId: request.jobId }))?.artifacts ?? [];
    for (const a of res.artifacts) {
      const content = await readFile(a.sourcePath).catch(() => undefined);
      const sha = content && createHash('sha256').update(content).digest('hex');
      if (sha !== a.sha256 || BigInt(content?.length ?? -1) !== a.sizeBytes)
        this.#note(
          'logArtifact',
          'an acknowledged artifact does not match its source',
          `${a.artifactPath}: ${a.sha256} vs ${sha}`,
          init,
        );
      const last = listed.findLast((l) => l.artifactPath === a.artifactPath);
      if (!last || last.sha256 !== a.sha256 || last.sizeBytes !== a.sizeBytes)
        this.#note('logArtifact', 'an acknowledged artifact does not read back', show(a.artifactPath), init);
    }
  }

  async uploadArtifact(
    input: { jobId: string; artifactPath: string; content: Uint8Array; chunkSize: number; header: string },
    m: Mutation | undefined,
    cut: number | undefined,
  ): Promise<void> {
    const sha = createHash('sha256').update(input.content).digest('hex');
    const header = {
      jobId: input.jobId,
      artifactPath: input.artifactPath,
      sizeBytes: BigInt(input.content.byteLength + (input.header === 'wrongSize' ? 1 : 0)),
      sha256:
        input.header === 'wrongHash'
          ? sha.replace(/^./, (c) => (c === '0' ? '1' : '0'))
          : input.header === 'badHash'
            ? 'xyz'
            : sha,
    };
    const parts: UploadArtifactRequest['part'][] = [];
    if (input.header !== 'missing') parts.push({ case: 'header', value: header as never });
    const chunkSize = Math.max(input.chunkSize, Math.ceil(input.content.byteLength / 100));
    for (let at = 0; at < input.content.byteLength; at += chunkSize)
      parts.push({ case: 'chunk', value: input.content.subarray(at, at + chunkSize) });
    if (input.header === 'twice') parts.push({ case: 'header', value: header as never });
    const files = this.#files();
    const sent = await this.#stream(
      'uploadArtifact',
      parts.map((part) => ({ part }) as never),
      m,
      cut,
    );
    const res = await this.#judge(
      'uploadArtifact',
      { m, cut, ...input, content: input.content.byteLength },
      sent.decodable ? parts : undefined,
      sent.outcome,
      files,
      {
        write: true,
        cut: cut !== undefined,
      },
    );
    if (!res || !sent.decodable || m) return;
    const listed = (await this.read('listArtifacts', { jobId: input.jobId }))?.artifacts ?? [];
    // A lone surrogate cannot cross the wire: protobuf's UTF-8 encoding sends it as U+FFFD.
    const sentPath = input.artifactPath.toWellFormed();
    const last = listed.findLast((l) => l.artifactPath === sentPath);
    if (!last || last.sha256 !== sha || last.sizeBytes !== BigInt(input.content.byteLength))
      this.#note(
        'uploadArtifact',
        'an acknowledged upload does not read back',
        show({ path: input.artifactPath, last }),
        input,
      );
  }

  /** Heartbeat: a write (it renews the lease); the answer tells the job's status as GetJob reads it. */
  async heartbeat(init: ReqInit<'heartbeat'>, m?: Mutation): Promise<void> {
    await this.watch.begin();
    const { request, outcome } = await this.#unary('heartbeat', init, m);
    const res = await this.#judge('heartbeat', init, request, outcome, undefined, {
      write: true,
      mutation: m,
    });
    if (!res || !request) return;
    const stored = (await this.read('getJob', { jobId: request.jobId }))?.job;
    if (stored?.status !== res.status)
      this.#note(
        'heartbeat',
        'the answered status differs from the stored one',
        `answered ${res.status}, read ${stored?.status}`,
        init,
      );
    if ((res.status === JobStatus.RUNNING) !== (res.leaseExpiresAt !== undefined))
      this.#note(
        'heartbeat',
        'lease_expires_at is not set exactly while the job runs',
        `status ${res.status}, lease_expires_at ${show(res.leaseExpiresAt)}`,
        init,
      );
  }

  /** The read RPCs and RetryMlflowSync: a well-formed answer, and nothing written. */
  async readCase(
    name: Exclude<
      MethodName,
      | 'beginTraining'
      | 'beginEpoch'
      | 'endEpoch'
      | 'reportBatchMetrics'
      | 'endTraining'
      | 'logArtifact'
      | 'uploadArtifact'
      | 'heartbeat'
    >,
    init: ReqInit<typeof name>,
    m?: Mutation,
  ): Promise<void> {
    await this.watch.begin();
    const { request, outcome } = await this.#unary(name, init, m);
    const res = await this.#judge(name, init, request, outcome, undefined, {
      write: false,
      mutation: m,
    });
    // The operator RPCs of MLflow mirroring: refused (FAILED_PRECONDITION) where MLflow is not configured.
    if ((name === 'retryMlflowSync' || name === 'remirrorMlflowRun') && outcome.ok)
      this.#note(name, `${name} answered OK on a sidecar without MLflow`, 'OK', init);
    if (!res || !request) return;
    const r = request as Req<typeof name>;
    switch (name) {
      case 'listJobs': {
        const q = r as Req<'listJobs'>;
        const jobs = (res as Res<'listJobs'>).jobs;
        if (jobs.length > (q.pageSize || 50))
          this.#note(name, 'more jobs than page_size', `${jobs.length}`, init);
        if (
          jobs.some((j) => (q.status && j.status !== q.status) || (q.taskType && j.taskType !== q.taskType))
        )
          this.#note(name, 'a listed job does not match the filter', show(q), init);
        break;
      }
      case 'listEpochs': {
        const epochs = (res as Res<'listEpochs'>).epochs.map((e) => e.epoch);
        if (epochs.some((e, i) => i > 0 && e <= epochs[i - 1]!))
          this.#note(name, 'epochs not in epoch order', show(epochs), init);
        break;
      }
      case 'listBatchMetrics':
        for (const b of (res as Res<'listBatchMetrics'>).blocks)
          if (b.values.length !== b.steps.length * b.names.length)
            this.#note(name, 'a listed block is malformed', show(b), init);
        break;
      case 'getMetricCatalog': {
        const t = (r as Req<'getMetricCatalog'>).taskType;
        const catalogs = (res as Res<'getMetricCatalog'>).catalogs;
        if (t === 0 ? catalogs.length < 5 : catalogs.length !== 1 || catalogs[0]?.taskType !== t)
          this.#note(
            name,
            'the catalog answer does not match the request',
            show(catalogs.map((c) => c.taskType)),
            init,
          );
        break;
      }
      case 'getJob':
        if ((res as Res<'getJob'>).job?.jobId !== (r as Req<'getJob'>).jobId)
          this.#note(name, 'GetJob answered another job', '', init);
        break;
      default:
        break;
    }
  }
}
