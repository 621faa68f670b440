// Turns proto/status-table.json — what a client does with each gRPC status of a failed write — into
// code for both clients and a table for people, so the rule is written once:
//   packages/proto/src/gen/status_table.ts                       (TypeScript client, via @training-callbacks/proto)
//   packages/python-client/src/training_callbacks/_status_table.py (Python client)
//   README.md, between the status-table markers
// Run through `npm run generate` (after `buf generate`, which empties src/gen); CI fails when the
// committed output differs.
import { readDataFile, readRepoFile, writeGenerated } from './generated-files.ts';

type StatusClass = 'transient' | 'permanent' | 'suspect';
interface StatusRow {
  code: number;
  name: string;
  class: StatusClass;
  meaning: string;
}
interface StatusTable {
  description: string;
  retryMetadataKey: string;
  retryMetadataValues: { transient: string; permanent: string };
  suspectAttempts: number;
  uploadFallbackStatuses: string[];
  uploadFallbackMeaning: string;
  classes: Record<StatusClass, string>;
  statuses: StatusRow[];
}

const {
  source,
  data: table,
  header,
} = readDataFile<StatusTable>('proto/status-table.json', import.meta.filename);
check(table);

const byCode = table.statuses.map((s) => [s.code, s.class] as const);
const uploadFallbackCodes = table.uploadFallbackStatuses.map(
  (name) => table.statuses.find((s) => s.name === name)!.code,
);
const classText = (c: StatusClass): string =>
  table.classes[c].replaceAll('{suspectAttempts}', String(table.suspectAttempts));

const ts = `// ${header}
// What a client does with each gRPC status of a failed write (see the README's status table).

/** How a client handles a failed write: retry until acknowledged, drop, or retry a few times. */
export type StatusClass = 'transient' | 'permanent' | 'suspect';

/** Trailing metadata with which the sidecar overrides a status's class for one refusal. */
export const RETRY_METADATA_KEY = ${JSON.stringify(table.retryMetadataKey)};
/** {@link RETRY_METADATA_KEY} value: ${table.retryMetadataValues.transient}. */
export const RETRY_TRANSIENT = 'transient';
/** {@link RETRY_METADATA_KEY} value: ${table.retryMetadataValues.permanent}. */
export const RETRY_PERMANENT = 'permanent';
/** Attempts in all for a 'suspect' status before it is handled as permanent. */
export const SUSPECT_ATTEMPTS = ${table.suspectAttempts};

/** What each class means for the client. */
export const STATUS_CLASS_MEANINGS: Readonly<Record<StatusClass, string>> = Object.freeze({
${(['transient', 'permanent', 'suspect'] as const).map((c) => `  ${c}: ${JSON.stringify(classText(c))},`).join('\n')}
});

/** The default class of each status code (OK excluded). */
export const STATUS_CLASSES: ReadonlyMap<number, StatusClass> = new Map<number, StatusClass>([
${byCode.map(([code, cls]) => `  [${code}, '${cls}'],`).join('\n')}
]);

/** The codes ${table.uploadFallbackStatuses.join(', ')}: ${table.uploadFallbackMeaning}. */
export const UPLOAD_FALLBACK_CODES: ReadonlySet<number> = new Set([${uploadFallbackCodes.join(', ')}]);

/**
 * The class of a failed write with status \`code\`; \`retryMarker\` is the value of the
 * {@link RETRY_METADATA_KEY} trailer, if the sidecar sent one. A code missing from the table is permanent.
 */
export function classifyStatus(code: number, retryMarker?: string): StatusClass {
  if (retryMarker === RETRY_TRANSIENT) return 'transient';
  if (retryMarker === RETRY_PERMANENT) return 'permanent';
  return STATUS_CLASSES.get(code) ?? 'permanent';
}
`;

const py = `"""${header}

What a client does with each gRPC status of a failed write (see the README's status table).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "RETRY_METADATA_KEY",
    "RETRY_PERMANENT",
    "RETRY_TRANSIENT",
    "STATUS_CLASSES",
    "STATUS_CLASS_MEANINGS",
    "SUSPECT_ATTEMPTS",
    "UPLOAD_FALLBACK_CODES",
    "StatusClass",
    "classify_status",
]

#: How a client handles a failed write: retry until acknowledged, drop, or retry a few times.
StatusClass = Literal["transient", "permanent", "suspect"]

#: Trailing metadata with which the sidecar overrides a status's class for one refusal.
RETRY_METADATA_KEY = ${JSON.stringify(table.retryMetadataKey)}
#: RETRY_METADATA_KEY value: ${table.retryMetadataValues.transient}.
RETRY_TRANSIENT = "transient"
#: RETRY_METADATA_KEY value: ${table.retryMetadataValues.permanent}.
RETRY_PERMANENT = "permanent"
#: Attempts in all for a "suspect" status before it is handled as permanent.
SUSPECT_ATTEMPTS = ${table.suspectAttempts}

#: What each class means for the client.
STATUS_CLASS_MEANINGS: dict[StatusClass, str] = {
${(['transient', 'permanent', 'suspect'] as const).map((c) => `    "${c}": ${JSON.stringify(classText(c))},`).join('\n')}
}

#: The default class of each status code (OK excluded).
STATUS_CLASSES: dict[int, StatusClass] = {
${byCode.map(([code, cls]) => `    ${code}: "${cls}",`).join('\n')}
}


#: The codes ${table.uploadFallbackStatuses.join(', ')}: ${table.uploadFallbackMeaning}.
UPLOAD_FALLBACK_CODES: frozenset[int] = frozenset({${uploadFallbackCodes.join(', ')}})

def classify_status(code: int, retry_marker: str | None = None) -> StatusClass:
    """The class of a failed write with status \`\`code\`\`; \`\`retry_marker\`\` is the value of the
    RETRY_METADATA_KEY trailer, if the sidecar sent one. A code missing from the table is permanent."""
    if retry_marker == RETRY_TRANSIENT:
        return "transient"
    if retry_marker == RETRY_PERMANENT:
        return "permanent"
    return STATUS_CLASSES.get(code, "permanent")
`;

const begin = '<!-- status-table:begin -->';
const end = '<!-- status-table:end -->';
const markdown = [
  begin,
  `<!-- ${header} -->`,
  '',
  '| status | meaning | class |',
  '|---|---|---|',
  ...table.statuses.map((s) => `| \`${s.name}\` | ${s.meaning} | ${s.class} |`),
  '',
  '| class | what both clients do with a failed write |',
  '|---|---|',
  ...(['transient', 'permanent', 'suspect'] as const).map((c) => `| ${c} | ${classText(c)} |`),
  '',
  `The sidecar overrides a status's class for one refusal with the trailing metadata \`${table.retryMetadataKey}\`:`,
  `\`transient\` (${table.retryMetadataValues.transient}) or \`permanent\` (${table.retryMetadataValues.permanent}).`,
  end,
].join('\n');

const readme = readRepoFile('README.md');
const from = readme.indexOf(begin);
const to = readme.indexOf(end);
if (from < 0 || to < from) throw new Error(`README.md has no ${begin} … ${end} section to fill`);
writeGenerated({
  'packages/proto/src/gen/status_table.ts': ts,
  'packages/python-client/src/training_callbacks/_status_table.py': py,
  'README.md': readme.slice(0, from) + markdown + readme.slice(to + end.length),
});
console.log(
  `generate-status-table: ${table.statuses.length} statuses from ${source} → TS, Python, README.md`,
);

function check(t: StatusTable): void {
  const classes = new Set(['transient', 'permanent', 'suspect']);
  const seen = new Set<number>();
  for (const s of t.statuses) {
    if (!Number.isInteger(s.code) || s.code < 1 || s.code > 16 || seen.has(s.code))
      throw new Error(`${source}: status ${s.name} has a bad or repeated code ${s.code}`);
    if (!classes.has(s.class)) throw new Error(`${source}: status ${s.name} has an unknown class ${s.class}`);
    if (!/^[A-Z_]+$/.test(s.name) || !s.meaning)
      throw new Error(`${source}: status ${s.code} needs a name and a meaning`);
    seen.add(s.code);
  }
  if (!(t.suspectAttempts >= 1)) throw new Error(`${source}: suspectAttempts must be at least 1`);
  for (const name of t.uploadFallbackStatuses) {
    if (!t.statuses.some((s) => s.name === name))
      throw new Error(`${source}: uploadFallbackStatuses names unknown ${name}`);
  }
}
