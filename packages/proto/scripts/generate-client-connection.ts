// Turns proto/client-connection.json — the settings with which a client finds and authenticates to its
// sidecar (argument names, environment variables, which source wins) — into code for both clients and
// a table for people, so the names and the precedence are written once:
//   packages/proto/src/gen/client_connection.ts                        (TypeScript, via @training-callbacks/proto)
//   packages/python-client/src/training_callbacks/_client_connection.py (Python client)
//   docs/security.md, between the client-connection markers
// Run through `npm run generate` (after `buf generate`, which empties src/gen); CI fails when the
// committed output differs.
import { readDataFile, readRepoFile, writeGenerated } from './generated-files.ts';

interface Setting {
  name: string;
  env: string;
  default?: string;
  meaning: string;
}
interface TokenSource {
  from: 'argument' | 'environment';
  setting: 'token' | 'tokenFile';
}
interface ClientConnection {
  description: string;
  precedence: string;
  settings: Setting[];
  tokenSources: TokenSource[];
  authorizationMetadataKey: string;
  authorizationScheme: string;
}

const { source, data, header } = readDataFile<ClientConnection>(
  'proto/client-connection.json',
  import.meta.filename,
);
check(data);

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const address = data.settings.find((s) => s.name === 'address')!;

const ts = `// ${header}
// How a client finds and authenticates to its sidecar (see docs/security.md).

/** A connection setting: a client option of this name, and an environment variable. */
export type ConnectionSettingName = ${data.settings.map((s) => `'${s.name}'`).join(' | ')};

/** The environment variable of each setting. ${data.precedence} */
export const CONNECTION_ENV: Readonly<Record<ConnectionSettingName, string>> = Object.freeze({
${data.settings.map((s) => `  /** ${s.meaning} */\n  ${s.name}: ${JSON.stringify(s.env)},`).join('\n')}
});

/** What each setting is, in a few words (for help texts such as the CLI's). */
export const CONNECTION_MEANING: Readonly<Record<ConnectionSettingName, string>> = Object.freeze({
${data.settings.map((s) => `  ${s.name}: ${JSON.stringify(s.meaning)},`).join('\n')}
});

/** The sidecar address used when neither an argument nor ${address.env} gives one. */
export const DEFAULT_SIDECAR_ADDRESS = ${JSON.stringify(address.default)};

/** Where the bearer token comes from, first match wins. */
export const TOKEN_SOURCES: readonly { readonly from: 'argument' | 'environment'; readonly setting: 'token' | 'tokenFile' }[] =
  Object.freeze([
${data.tokenSources.map((t) => `    { from: '${t.from}', setting: '${t.setting}' },`).join('\n')}
  ]);

/** The metadata key and scheme of the token: \`${data.authorizationMetadataKey}: ${data.authorizationScheme} <token>\`. */
export const AUTHORIZATION_METADATA_KEY = ${JSON.stringify(data.authorizationMetadataKey)};
export const AUTHORIZATION_SCHEME = ${JSON.stringify(data.authorizationScheme)};
`;

const py = `"""${header}

How a client finds and authenticates to its sidecar (see docs/security.md).
"""

from __future__ import annotations

from typing import Final

#: The environment variable of each setting (keyword argument name → variable).
#: ${data.precedence}
CONNECTION_ENV: Final[dict[str, str]] = {
${data.settings.map((s) => `    ${JSON.stringify(snake(s.name))}: ${JSON.stringify(s.env)},  # ${s.meaning}`).join('\n')}
}

#: The sidecar address used when neither an argument nor $${address.env} gives one.
DEFAULT_ADDRESS: Final = ${JSON.stringify(address.default)}

#: Where the bearer token comes from, first match wins: ("argument" | "environment", setting).
TOKEN_SOURCES: Final[tuple[tuple[str, str], ...]] = (
${data.tokenSources.map((t) => `    (${JSON.stringify(t.from)}, ${JSON.stringify(snake(t.setting))}),`).join('\n')}
)

#: The metadata key and scheme of the token: \`\`${data.authorizationMetadataKey}: ${data.authorizationScheme} <token>\`\`.
AUTHORIZATION_METADATA_KEY: Final = ${JSON.stringify(data.authorizationMetadataKey)}
AUTHORIZATION_SCHEME: Final = ${JSON.stringify(data.authorizationScheme)}
`;

const table = [
  `<!-- client-connection:begin — generated from ${source} by \`npm run generate\`; do not edit -->`,
  '| TypeScript option | Python argument | environment | meaning |',
  '|---|---|---|---|',
  ...data.settings.map(
    (s) =>
      `| \`${s.name}\` | \`${snake(s.name)}\` | \`${s.env}\` | ${s.meaning}${s.default ? ` (default \`${s.default}\`)` : ''} |`,
  ),
  '',
  `${data.precedence}`,
  '<!-- client-connection:end -->',
].join('\n');

const doc = readRepoFile('docs/security.md');
const marked = /<!-- client-connection:begin[^\n]*-->[\s\S]*?<!-- client-connection:end -->/;
if (!marked.test(doc)) throw new Error('docs/security.md has no client-connection:begin/end markers');
writeGenerated({
  'packages/proto/src/gen/client_connection.ts': ts,
  'packages/python-client/src/training_callbacks/_client_connection.py': py,
  'docs/security.md': doc.replace(marked, table),
});
console.log(`generate-client-connection: ${data.settings.length} settings → TS, Python, docs/security.md`);

function check(d: ClientConnection): void {
  const names = new Set(d.settings.map((s) => s.name));
  for (const required of ['address', 'token', 'tokenFile', 'caFile', 'clientCertFile', 'clientKeyFile']) {
    if (!names.has(required)) throw new Error(`${source}: setting "${required}" is missing`);
  }
  for (const s of d.settings) {
    if (!/^[a-z][A-Za-z]*$/.test(s.name)) throw new Error(`${source}: "${s.name}" must be camelCase`);
    if (!/^TRAINING_CALLBACKS_[A-Z_]+$/.test(s.env)) throw new Error(`${source}: bad variable "${s.env}"`);
  }
  if (new Set(d.settings.map((s) => s.env)).size !== d.settings.length) {
    throw new Error(`${source}: two settings share an environment variable`);
  }
  for (const t of d.tokenSources) {
    if (!names.has(t.setting)) throw new Error(`${source}: token source names unknown "${t.setting}"`);
  }
}
