// Hostile inputs for every RPC of trainingcallbacks.v1, as fast-check arbitraries. Each case is one
// call: the method, the request message(s) as protobuf-es init objects, and optionally what to do to
// the encoded bytes (a mutation) or to the stream (cut after n messages). Most values are ordinary
// enough to be accepted, so that accepted writes are read back too; the rest go for the edges.
import type { JsonValue } from '@bufbuild/protobuf';
import type { JobStatus, MetricFormat, TaskType, TrainingOutcome } from '@training-callbacks/proto';
import fc from 'fast-check';
import { type GeneratorId, generatorOn } from './known-open-findings.ts';

/** The job ids the fuzz run begins (a running job per task type) and reports against. */
export const TASK_TYPES = [1, 2, 3, 4, 5] as const;
export const POOL = TASK_TYPES.flatMap((t) => [0, 1, 2, 3].map((i) => `fuzz-t${t}-${i}`));
/** Files under the artifact root that LogArtifact cases point at (created by the suite). */
export const ROOT_ENTRIES = [
  'small.bin',
  'empty.bin',
  'dir',
  'dir/nested',
  'link-out',
  'missing',
  '',
] as const;

const on = (id: GeneratorId) => generatorOn(id);
/** `arb` when the generator is on, else nothing (fc.oneof needs at least one arbitrary). */
const gated = <T>(id: GeneratorId, arb: fc.Arbitrary<T>): fc.Arbitrary<T>[] => (on(id) ? [arb] : []);

const CONTROL = fc.constantFrom('\u0000', '\u0001', '\u001f', '\u007f', '\u0085', '\n', '\t');
const ODD_UNICODE = fc.constantFrom(
  '😀',
  'é',
  'e\u0301',
  '\u202e',
  '\ufeff',
  '\u200b',
  '\ud800', // a lone surrogate: encodes as U+FFFD on the wire
  '𝔘𝔫𝔦',
  '한',
  '\u{10ffff}',
);

/** Text that is mostly printable, sometimes odd: unicode, control characters, NUL. */
function text(maxLength: number, hostile: fc.Arbitrary<string>[] = []): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.string({ maxLength }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength }) },
    { weight: 1, arbitrary: fc.array(ODD_UNICODE, { maxLength: 8 }).map((a) => a.join('')) },
    ...hostile.map((arbitrary) => ({ weight: 1, arbitrary })),
  );
}

/** A long string built by repetition (cheap to generate even at megabytes). */
const repeated = (unit: fc.Arbitrary<string>, lengths: number[]) =>
  fc.tuple(unit, fc.constantFrom(...lengths)).map(([u, n]) => u.repeat(n));

export const jobId: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...POOL) },
  { weight: 2, arbitrary: fc.nat(50).map((n) => `fuzz-new-${n}`) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'a/b', '../x', '%2e%2e', 'a\\b', 'CON', 'nul', '-', '~') },
  { weight: 1, arbitrary: repeated(fc.constant('j'), [128, 129, 1000]) },
  { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 4 }), CONTROL).map(([a, c]) => `${a}${c}x`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }) },
  ...gated('dotJobIds', fc.constantFrom('.', '..')).map((arbitrary) => ({ weight: 2, arbitrary })),
  ...gated('longNames', repeated(fc.constantFrom('😀', 'é', '한'), [64, 100, 128, 129])).map((arbitrary) => ({
    weight: 1,
    arbitrary,
  })),
);

const PROTO_KEYS = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
);

export const metricName: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(
      'accuracy',
      'loss',
      'train_loss',
      'val_loss',
      'lr',
      'eval_top1',
      'eval_top5',
      'metrics/mAP50(B)',
      'metrics/mAP50-95(B)',
      'mAP50',
      'miou',
      'pck',
      'val_accuracy',
      'epoch_time',
      'my_custom',
      'lr/pg0',
      'lr/pg1',
    ),
  },
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z][a-z0-9_/.-]{0,20}$/) },
  { weight: 1, arbitrary: text(40) },
  { weight: 1, arbitrary: repeated(fc.constantFrom('m', 'é', '😀'), [255, 256, 257, 5000]) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'a\u0000b', '\n') },
  ...gated('protoKeys', PROTO_KEYS).map((arbitrary) => ({ weight: 2, arbitrary })),
);

/** Doubles with every edge: NaN, ±Infinity, -0, subnormals, huge; and plain ones. */
export const metricValue: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.double({ min: -10, max: 110, noNaN: true }) },
  { weight: 2, arbitrary: fc.double() },
  {
    weight: 1,
    arbitrary: fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 5e-324, Number.MAX_VALUE, 88.2728),
  },
);

export const metricMap: fc.Arbitrary<Record<string, number>> = fc.oneof(
  { weight: 10, arbitrary: fc.dictionary(metricName, metricValue, { maxKeys: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1000, 1001).map((n) => metricsOfSize(n)) },
);

function metricsOfSize(n: number): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (let i = 0; i < n; i++) metrics[`m${i}`] = i;
  return metrics;
}

/** int32 epochs, with the edges. */
export const epoch: fc.Arbitrary<number> = fc.oneof(
  { weight: 8, arbitrary: fc.nat(30) },
  { weight: 1, arbitrary: fc.constantFrom(-1, -2147483648, 2147483647, 2147483646) },
  { weight: 1, arbitrary: fc.integer() },
);

const TS_MIN = -62135596800n; // 0001-01-01T00:00:00Z
const TS_MAX = 253402300799n; // 9999-12-31T23:59:59Z
/** google.protobuf.Timestamp, absent, ordinary, at and beyond the range of Timestamp and of Date. */
export const timestamp: fc.Arbitrary<{ seconds: bigint; nanos: number } | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  {
    weight: 4,
    arbitrary: fc.record({
      seconds: fc.bigInt(1_600_000_000n, 1_900_000_000n),
      nanos: fc.integer({ min: 0, max: 999_999_999 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      seconds: fc.constantFrom(TS_MIN, TS_MAX, 0n, -1n),
      nanos: fc.constantFrom(0, 999_999_999),
    }),
  },
  ...gated(
    'extremeTimestamps',
    fc.record({
      seconds: fc.oneof(
        fc.constantFrom(
          TS_MIN - 1n,
          TS_MAX + 1n,
          8_640_000_000_001n,
          -8_640_000_000_001n,
          2n ** 63n - 1n,
          -(2n ** 63n),
        ),
        fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n),
      ),
      nanos: fc.constantFrom(0, -1, 1_000_000_000, 2147483647, -2147483648),
    }),
  ).map((arbitrary) => ({ weight: 2, arbitrary })),
);

/** An enum number: mostly defined values, sometimes unknown ones when that generator is on. */
function enumNumber<E extends number>(defined: readonly number[]): fc.Arbitrary<E> {
  const known: fc.Arbitrary<number> = fc.constantFrom(...defined);
  return fc.oneof(
    { weight: 10, arbitrary: known },
    ...gated('unknownEnums', fc.constantFrom(-1, defined.length, 42, 2147483647, -2147483648)).map(
      (arbitrary) => ({ weight: 1, arbitrary }),
    ),
  ) as fc.Arbitrary<E>;
}

export const taskType = enumNumber<TaskType>([0, 1, 2, 3, 4, 5]);

/** google.protobuf.Struct content: JSON, sometimes NaN/±Inf, sometimes nested very deep. */
export const struct: fc.Arbitrary<Record<string, JsonValue> | undefined> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  {
    weight: 6,
    arbitrary: fc.dictionary(
      fc.oneof(fc.string({ maxLength: 12 }), ...gated('protoKeys', PROTO_KEYS)),
      fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>,
      { maxKeys: 6 },
    ),
  },
  ...gated(
    'nonFiniteConfig',
    fc.constantFrom(Number.NaN, Infinity, -Infinity).map((v) => ({ lr: v, nested: { values: [1, v] } })),
  ).map((arbitrary) => ({ weight: 1, arbitrary: arbitrary as fc.Arbitrary<Record<string, JsonValue>> })),
  ...gated(
    'deepStructs',
    fc.integer({ min: 20, max: 120 }).map((depth) => nested(depth)),
  ).map((arbitrary) => ({ weight: 1, arbitrary })),
  ...gated(
    'hugeParams',
    fc.constantFrom(100_000, 2_000_000).map((n) => ({ blob: 'x'.repeat(n) })),
  ).map((arbitrary) => ({ weight: 1, arbitrary })),
);

function nested(depth: number): Record<string, JsonValue> {
  let value: Record<string, JsonValue> = { leaf: 1 };
  for (let i = 0; i < depth; i++) value = { [`l${i}`]: i % 2 ? value : [value] } as Record<string, JsonValue>;
  return value;
}

export const params: fc.Arbitrary<Record<string, string>> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.dictionary(
      fc.oneof(fc.string({ maxLength: 20 }), ...gated('protoKeys', PROTO_KEYS)),
      text(40, [CONTROL]),
      { maxKeys: 6 },
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(250, 251).map((n) => ({ ['k'.repeat(n)]: 'v' })) },
  { weight: 1, arbitrary: fc.constantFrom(6000, 6001).map((n) => ({ big: 'v'.repeat(n) })) },
  ...gated(
    'hugeParams',
    fc.constantFrom(999, 1000, 1001).map((n) => {
      const p: Record<string, string> = {};
      for (let i = 0; i < n; i++) p[`p${i}`] = 'v'.repeat(1000);
      return p;
    }),
  ).map((arbitrary) => ({ weight: 1, arbitrary })),
);

/** Extra MLflow run tags: good keys, reserved prefixes, keys MLflow refuses, lengths at the limits. */
export const tags: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({}) },
  {
    weight: 4,
    arbitrary: fc.dictionary(
      fc.oneof(
        fc.constantFrom('team', 'sweep/id', 'owner name', 'a.b', 'ü-ñ_1'),
        fc.string({ maxLength: 20 }),
        fc.constantFrom(
          'mlflow.runName',
          'mlflow.user',
          'training_callbacks.job_id',
          'a//b',
          '/a',
          'a/..',
          '.',
        ),
        ...gated('protoKeys', PROTO_KEYS),
      ),
      text(40, [CONTROL]),
      { maxKeys: 4 },
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(250, 251).map((n) => ({ ['k'.repeat(n)]: 'v' })) },
  { weight: 1, arbitrary: fc.constantFrom(5000, 5001).map((n) => ({ big: '😀'.repeat(n) })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(100, 101)
      .map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, 'v']))),
  },
);

/** The MLflow run name: empty (the default), ordinary, control characters, at and over the limit. */
export const runName: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  { weight: 3, arbitrary: text(40, [CONTROL]) },
  { weight: 1, arbitrary: repeated(fc.constant('r'), [250, 251]) },
);

const customMetric = fc.record({
  name: metricName,
  label: text(30, gated('nulText', CONTROL)),
  format: enumNumber<MetricFormat>([0, 1, 2, 3]),
  higherIsBetter: fc.boolean(),
  description: text(60, gated('nulText', CONTROL)),
});

/** A client session id: none, a UUID, and the edges (control characters, at and over 128). */
export const sessionId: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  { weight: 4, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: text(40, [CONTROL]) },
  { weight: 1, arbitrary: repeated(fc.constantFrom('s', '😀'), [128, 129]) },
);

/**
 * BeginTraining's trainer: absent, or any process description — pids and start times that name no
 * process here (never watched), hosts and boot ids at and over their limits, odd text. (The e2e
 * verdict specs watch real processes; here a process that exits would end a pool job mid-run.)
 */
const trainer = fc.option(
  fc.record({
    pid: fc.oneof(fc.constantFrom(0, 1, 2 ** 31, 2 ** 32 - 1), fc.nat()),
    startTimeTicks: fc.oneof(fc.constantFrom(0n, 2n ** 64n - 1n), fc.bigInt({ min: 1n, max: 2n ** 40n })),
    hostname: fc.oneof(
      fc.constantFrom('', 'gpu-7'),
      text(30, [CONTROL]),
      repeated(fc.constant('h'), [255, 256]),
    ),
    bootId: fc.oneof(fc.constant(''), fc.uuid(), text(20, [CONTROL]), repeated(fc.constant('b'), [64, 65])),
    sessionId,
  }),
  { nil: undefined },
);

export const beginTraining = fc.record({
  jobId,
  taskType,
  framework: fc.oneof(
    fc.constantFrom('', 'ultralytics', 'timm', 'transformers', 'lightning'),
    text(30, [CONTROL]),
    repeated(fc.constant('f'), [256, 257]),
  ),
  modelName: fc.oneof(fc.constantFrom('', 'yolo11n', 'resnet50'), text(30, [CONTROL])),
  modelConfig: struct,
  trainingConfig: struct,
  params,
  customMetrics: fc.array(customMetric, { maxLength: 3 }),
  startEpoch: epoch,
  runName,
  tags,
  trainer,
});

export const beginEpoch = fc.record({ jobId, epoch, timestamp });
export const endEpoch = fc.record({ jobId, epoch, metrics: metricMap, timestamp });

/** A batch block; `fresh` marks blocks in the epoch reserved for this one case (see the runner). */
const batchBlock = fc
  .record({
    names: fc.oneof(
      {
        weight: 6,
        arbitrary: fc.uniqueArray(
          fc.constantFrom('loss', 'lr', 'train_loss', 'my_batch', 'eval_top1', 'lr/pg0'),
          { minLength: 1, maxLength: 3 },
        ),
      },
      { weight: 1, arbitrary: fc.array(metricName, { maxLength: 3 }) },
    ),
    rows: fc.integer({ min: 0, max: 40 }),
    firstStep: fc.oneof(
      fc.nat(1_000_000).map(BigInt),
      fc.constantFrom(-1n, 2n ** 63n - 1n, -(2n ** 63n), 0n),
    ),
    epoch: fc.oneof({ weight: 9, arbitrary: fc.constant('fresh' as const) }, { weight: 1, arbitrary: epoch }),
    valueCountDelta: fc.oneof(
      { weight: 9, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) },
    ),
    values: fc.array(metricValue, { minLength: 1, maxLength: 8 }),
  })
  .map((b) => {
    const count = Math.max(0, b.rows * b.names.length + b.valueCountDelta);
    const values = Array.from({ length: count }, (_, i) => b.values[i % b.values.length]!);
    const steps = Array.from({ length: b.rows }, (_, i) => BigInt.asIntN(64, b.firstStep + BigInt(i)));
    return { epoch: b.epoch, names: b.names, steps, values };
  });

export type BatchBlockCase = typeof batchBlock extends fc.Arbitrary<infer T> ? T : never;

export const reportBatchMetrics = fc.record({
  jobId,
  /** Messages of the stream; the later ones may leave job_id empty (allowed) or name another job. */
  messages: fc.array(
    fc.record({
      jobId: fc.oneof(
        { weight: 6, arbitrary: fc.constant('same' as const) },
        { weight: 3, arbitrary: fc.constant('' as const) },
        { weight: 1, arbitrary: jobId },
      ),
      blocks: fc.array(batchBlock, { maxLength: 3 }),
    }),
    { minLength: 0, maxLength: 4 },
  ),
  resendAsOtherCut: on('batchResend') ? fc.boolean() : fc.constant(false),
});

export const endTraining = fc.record({
  jobId,
  outcome: enumNumber<TrainingOutcome>([0, 1, 2, 3]),
  finalMetrics: metricMap,
  errorMessage: fc.oneof(
    text(100, gated('nulText', fc.constantFrom('boom\u0000here', 'a\u0000', '\u0000'))),
    repeated(fc.constant('e'), [16384, 16385, 100_000]),
  ),
});

export const artifactPath: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom('', 'checkpoints', 'checkpoints/best.pt', 'plots/a.png', 'a', 'x/y/z'),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z]{1,8}(\/[a-z.]{1,8}){0,3}$/) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '..',
      '.',
      'a/../b',
      '/abs',
      'a//b',
      'a\\b',
      '../training-callbacks.sqlite',
      'training-callbacks.sqlite',
      'a/',
    ),
  },
  { weight: 1, arbitrary: text(30, [CONTROL]) },
  { weight: 1, arbitrary: repeated(fc.constant('p'), [513, 1000]) },
  ...gated('longNames', repeated(fc.constant('p'), [255, 256, 512])).map((arbitrary) => ({
    weight: 1,
    arbitrary,
  })),
  ...gated('longNames', repeated(fc.constantFrom('é', '😀', '한'), [100, 200, 300])).map((arbitrary) => ({
    weight: 1,
    arbitrary,
  })),
  ...gated('artifactClashes', fc.constantFrom('clash', 'clash/inner', 'clash/inner/deeper')).map(
    (arbitrary) => ({ weight: 2, arbitrary }),
  ),
);

export const logArtifact = fc.record({
  jobId,
  /** Relative to the artifact root, or an absolute path elsewhere. */
  path: fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...ROOT_ENTRIES).map((p) => ({ root: p })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom('/etc/passwd', 'relative/path', '', '/nonexistent/x', '/proc/self/environ')
        .map((p) => ({ absolute: p })),
    },
    { weight: 1, arbitrary: fc.constant({ database: true as const }) },
  ),
  artifactPath,
});

export const uploadArtifact = fc.record({
  jobId,
  artifactPath,
  content: fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.constantFrom(0, 70_000, 1_100_000).map((n) => new Uint8Array(n).fill(7)),
  ),
  /** Bytes per chunk; the runner raises it so that no upload takes more than ~100 messages. */
  chunkSize: fc.constantFrom(1, 7, 1024, 65536, 1 << 20),
  /** How the header lies: announce the right size/hash, or not. */
  header: fc.constantFrom(
    'honest',
    'honest',
    'honest',
    'wrongSize',
    'wrongHash',
    'badHash',
    'missing',
    'twice',
  ),
});

export const listJobs = fc.record({
  status: enumNumber<JobStatus>([0, 1, 2, 3, 4]),
  taskType,
  pageSize: fc.oneof(fc.constantFrom(0, 1, 2, 50, 1000, 1001, -1), fc.integer()),
  pageToken: fc.oneof(
    { weight: 4, arbitrary: fc.constant('') },
    { weight: 1, arbitrary: text(30) },
    { weight: 1, arbitrary: fc.base64String({ maxLength: 40 }) },
  ),
});

export const listBatchMetrics = fc.record({ jobId, epoch: fc.option(epoch, { nil: undefined }) });
export const jobOnly = fc.record({ jobId });
export const heartbeat = fc.record({ jobId, sessionId });
export const getMetricCatalog = fc.record({ taskType });

/** int64 steps: small, negative, and the type's edges. */
const step = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt({ min: 0n, max: 10_000n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) },
  { weight: 1, arbitrary: fc.constantFrom(-(2n ** 63n), 2n ** 63n - 1n, -1n) },
);
export const getMetricSeries = fc.record({
  jobId,
  name: fc.oneof(fc.constantFrom('loss', 'train_loss', 'lr', 'accuracy'), text(300)),
  minStep: fc.option(step, { nil: undefined }),
  maxStep: fc.option(step, { nil: undefined }),
  maxPoints: fc.oneof(fc.integer({ min: -5, max: 12_000 }), fc.constantFrom(0, 1, 2000, 10_000, 2 ** 31 - 1)),
});
/** uint64 change sequence numbers: from the start, small, and beyond anything stored. */
const afterSeq = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 1000n }) },
  { weight: 1, arbitrary: fc.constantFrom(2n ** 53n, 2n ** 64n - 1n) },
);
export const watchJobs = fc.record({ afterSeq, fromHead: fc.boolean() });
export const watchJob = fc.record({ jobId, afterSeq, fromHead: fc.boolean() });

/** What to do to a case's encoded bytes, when anything. */
export const mutation = fc.oneof(
  { weight: 17, arbitrary: fc.constant(undefined) },
  ...gated(
    'garbageBytes',
    fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
      fc.record({
        kind: fc.constant('append' as const),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
      }),
      fc.record({ kind: fc.constant('badUtf8' as const) }),
      fc.record({ kind: fc.constant('wrongWireType' as const) }),
      fc.record({ kind: fc.constant('unknownField' as const) }),
    ),
  ).map((arbitrary) => ({ weight: 3, arbitrary })),
);

export type Mutation = NonNullable<typeof mutation extends fc.Arbitrary<infer T> ? T : never>;

/** Sometimes a cut: after how many messages (relative) a stream is cancelled. */
const someCut = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.double({ min: 0, max: 0.999, noNaN: true }) },
);

/** Cuts a ReportBatchMetrics stream mid-way, when the generator is on. */
export const cut = on('cutStreams') ? someCut : fc.constant(undefined);

/** Cuts an UploadArtifact stream mid-way, when its generator is on (independent of `cutStreams`). */
export const uploadCut = on('cutUploads') ? someCut : fc.constant(undefined);
