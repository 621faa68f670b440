// The fuzz suite's switchboard of hostile generators whose findings are known and not yet fixed.
//
// Every generator is on unless its finding is listed in KNOWN_OPEN below. A finding is listed only
// while the helper or issue that owns it has not landed the fix, so that main stays green; when the
// fix lands, delete its line here and the generator runs again. `FUZZ_ALL=1` turns every generator on
// regardless (to see what still fails: `FUZZ_ALL=1 npx vitest run src/fuzz`). The findings themselves,
// with inputs and answers, are written up in docs (see apps/sidecar-e2e/README.md, "Fuzz suite").

/** Every switchable generator: hostile inputs that have found (or may find) a bug. */
export const GENERATORS = {
  dotJobIds: 'job ids "." and ".." (artifact store directories)',
  longNames:
    'job ids and artifact path segments too long for a file name (255+ bytes; multi-byte code points)',
  artifactClashes: 'artifact paths that clash with an existing artifact file or directory',
  protoKeys: 'metric names and param keys "__proto__", "constructor", … (plain-object keys)',
  nulText: 'NUL and control characters in free text (error_message, labels, descriptions)',
  extremeTimestamps: 'timestamps outside google.protobuf.Timestamp / JavaScript Date range',
  unknownEnums: 'unknown enum numbers (task type, outcome, metric format, status filters)',
  deepStructs: 'google.protobuf.Struct configs nested far deeper than any real config',
  nonFiniteConfig: 'NaN and ±Infinity inside Struct configs',
  hugeParams: 'params and configs near and over the message-size limit',
  garbageBytes: 'raw undecodable request bytes (truncated, mutated, random)',
  cutStreams: 'ReportBatchMetrics streams cancelled mid-way',
  cutUploads: 'UploadArtifact streams cancelled mid-way (their staging files judged)',
  batchResend: 'batch points resent for the same (job, name, step)',
} as const;

export type GeneratorId = keyof typeof GENERATORS;

/**
 * Findings that are open, by generator: who fixes them. Keep this list short and shrinking; each
 * entry names the owner so the line can be deleted the moment the fix is on main.
 */
export const KNOWN_OPEN: Partial<Record<GeneratorId, string>> = {};

/** Whether a generator runs in this run. */
export function generatorOn(id: GeneratorId): boolean {
  return process.env.FUZZ_ALL === '1' || !(id in KNOWN_OPEN);
}
