// Turns proto/request-limits.json — what the sidecar accepts in BeginTraining's params and trainer — into code for
// the sidecar's validation and both clients, which keep a job's params within them before sending:
//   packages/proto/src/gen/request_limits.ts
//   packages/python-client/src/training_callbacks/_request_limits.py
// Run through `npm run generate` (after `buf generate`, which empties src/gen); CI fails when the
// committed output differs.
import { readDataFile, writeGenerated } from './generated-files.ts';

interface RequestLimits {
  description: string;
  params: {
    maxEntries: number;
    keyMaxLength: number;
    valueMaxLength: number;
    keyControlCharacterRanges: [number, number][];
    shortenedKeyDigestHexDigits: number;
    shortenedKeySeparator: string;
    cutValueSuffix: string;
  };
  trainer: {
    hostnameMaxLength: number;
    bootIdMaxLength: number;
  };
}

const { source, data, header } = readDataFile<RequestLimits>(
  'proto/request-limits.json',
  import.meta.filename,
);
const { params, trainer } = data;
for (const name of ['maxEntries', 'keyMaxLength', 'valueMaxLength', 'shortenedKeyDigestHexDigits'] as const) {
  if (!Number.isInteger(params[name]) || params[name] < 1)
    throw new Error(`${source}: params.${name} must be a positive integer`);
}
for (const name of ['hostnameMaxLength', 'bootIdMaxLength'] as const) {
  if (!Number.isInteger(trainer[name]) || trainer[name] < 1)
    throw new Error(`${source}: trainer.${name} must be a positive integer`);
}
for (const [from, to] of params.keyControlCharacterRanges) {
  if (!Number.isInteger(from) || !Number.isInteger(to) || from > to || from < 0 || to > 0x10ffff) {
    throw new Error(`${source}: bad range [${from}, ${to}]`);
  }
}
if (params.shortenedKeyDigestHexDigits > 64) throw new Error(`${source}: a SHA-256 has 64 hex digits`);
if (!params.cutValueSuffix.includes('{length}'))
  throw new Error(`${source}: params.cutValueSuffix must hold {length}`);
const hex = (n: number) => `\\u${n.toString(16).padStart(4, '0')}`;
const characterClass = params.keyControlCharacterRanges.map(([a, b]) => `${hex(a)}-${hex(b)}`).join('');

const ts = `// ${header}
// What the sidecar accepts in BeginTraining's params (lengths in code points); both clients keep a
// job's params within the same limits before sending.

/** Most params one job may have. */
export const MAX_PARAMS = ${params.maxEntries};
/** Longest param key. */
export const PARAM_KEY_MAX_LENGTH = ${params.keyMaxLength};
/** Longest param value. */
export const PARAM_VALUE_MAX_LENGTH = ${params.valueMaxLength};
/** A key too long: its start, this separator and this many hex digits of its SHA-256. */
export const PARAM_KEY_DIGEST_SEPARATOR = ${JSON.stringify(params.shortenedKeySeparator)};
export const PARAM_KEY_DIGEST_HEX_DIGITS = ${params.shortenedKeyDigestHexDigits};
/** The end of a value too long, \`{length}\` its length in code points. */
export const PARAM_VALUE_CUT_SUFFIX = ${JSON.stringify(params.cutValueSuffix)};
/** Characters a param key must not contain. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
export const PARAM_KEY_FORBIDDEN = /[${characterClass}]/;
/** Longest TrainerProcess.hostname. */
export const HOSTNAME_MAX_LENGTH = ${trainer.hostnameMaxLength};
/** Longest TrainerProcess.boot_id. */
export const BOOT_ID_MAX_LENGTH = ${trainer.bootIdMaxLength};
`;

const py = `"""${header}

What the sidecar accepts in BeginTraining's params (lengths in code points): the client keeps a job's
params within these limits before sending, so that the job still begins.
"""

from __future__ import annotations

import re
from typing import Final

#: Most params one job may have.
MAX_PARAMS: Final = ${params.maxEntries}
#: Longest param key.
PARAM_KEY_MAX_LENGTH: Final = ${params.keyMaxLength}
#: Longest param value.
PARAM_VALUE_MAX_LENGTH: Final = ${params.valueMaxLength}
#: A key too long: its start, this separator and this many hex digits of its SHA-256.
PARAM_KEY_DIGEST_SEPARATOR: Final = ${JSON.stringify(params.shortenedKeySeparator)}
PARAM_KEY_DIGEST_HEX_DIGITS: Final = ${params.shortenedKeyDigestHexDigits}
#: The end of a value too long, \`\`{length}\`\` its length in code points.
PARAM_VALUE_CUT_SUFFIX: Final = ${JSON.stringify(params.cutValueSuffix)}
#: Characters a param key must not contain.
PARAM_KEY_FORBIDDEN: Final = re.compile("[${characterClass}]")
#: Longest TrainerProcess.hostname.
HOSTNAME_MAX_LENGTH: Final = ${trainer.hostnameMaxLength}
#: Longest TrainerProcess.boot_id.
BOOT_ID_MAX_LENGTH: Final = ${trainer.bootIdMaxLength}
`;

writeGenerated({
  'packages/proto/src/gen/request_limits.ts': ts,
  'packages/python-client/src/training_callbacks/_request_limits.py': py,
});
console.log('generate-request-limits: the params limits → TS, Python');
