// Turns proto/client-batching.json — how often both clients send a trainer's per-step points — into the
// default of each client, so that a trainer sees the same delay from either:
//   packages/proto/src/gen/client_batching.ts                         (TypeScript, via @training-callbacks/proto)
//   packages/python-client/src/training_callbacks/_client_batching.py (Python client)
// Run through `npm run generate` (after `buf generate`, which empties src/gen); CI fails when the
// committed output differs.
import { readDataFile, writeGenerated } from './generated-files.ts';

interface ClientBatching {
  description: string;
  flushIntervalMs: number;
}

const { data, header } = readDataFile<ClientBatching>('proto/client-batching.json', import.meta.filename);
if (!Number.isInteger(data.flushIntervalMs) || data.flushIntervalMs <= 0) {
  throw new Error(
    `proto/client-batching.json: flushIntervalMs must be a positive whole number of milliseconds`,
  );
}

const ts = `// ${header}

/** The default interval at which a client sends the points a trainer reported per step, in milliseconds. */
export const BATCH_FLUSH_INTERVAL_MS = ${data.flushIntervalMs};
`;

const py = `"""${header}"""

from __future__ import annotations

from typing import Final

#: The default interval at which the client sends the batch rows a trainer reported per step, in seconds.
FLUSH_INTERVAL_SECONDS: Final = ${data.flushIntervalMs / 1000}
`;

writeGenerated({
  'packages/proto/src/gen/client_batching.ts': ts,
  'packages/python-client/src/training_callbacks/_client_batching.py': py,
});
console.log('generate-client-batching: the batch flush interval → TS, Python');
