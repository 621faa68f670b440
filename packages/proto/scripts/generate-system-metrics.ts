// Turns proto/system-metrics.json — the system metrics the clients sample, under MLflow's names — into
// code for the sidecar's MLflow mirror and the Python client's samplers, so the names are written once:
//   packages/proto/src/gen/system_metrics.ts
//   packages/python-client/src/training_callbacks/_system_metrics.py
// Run through `npm run generate` (after `buf generate`, which empties src/gen); CI fails when the
// committed output differs.
import { readDataFile, writeGenerated } from './generated-files.ts';

interface SystemMetric {
  name: string;
  unit: string;
  meaning: string;
}
interface SystemMetrics {
  description: string;
  prefix: string;
  host: SystemMetric[];
  gpu: SystemMetric[];
}

const { source, data, header } = readDataFile<SystemMetrics>(
  'proto/system-metrics.json',
  import.meta.filename,
);
if (!/^[a-z]+\/$/.test(data.prefix)) throw new Error(`${source}: the prefix must be a word and "/"`);
for (const metric of [...data.host, ...data.gpu]) {
  if (!/^[a-z0-9_]+$/.test(metric.name)) throw new Error(`${source}: bad metric name ${metric.name}`);
}

const ts = `// ${header}
// The system metrics the clients sample, under MLflow's own names (its "System metrics" tab).

/** The prefix of every system metric; the MLflow mirror keeps such batch metrics under their own name. */
export const SYSTEM_METRIC_PREFIX = ${JSON.stringify(data.prefix)};

/** True for a system metric's name. */
export function isSystemMetric(name: string): boolean {
  return name.startsWith(SYSTEM_METRIC_PREFIX) && name.length > SYSTEM_METRIC_PREFIX.length;
}
`;

const entries = (metrics: SystemMetric[]) =>
  metrics.map((m) => `    ${JSON.stringify(m.name)}: ${JSON.stringify(m.unit)},  # ${m.meaning}`).join('\n');
const py = `"""${header}

The system metrics the client samples, under MLflow's own names (its "System metrics" tab): the host's
under the prefix, each GPU's as \`\`gpu_<index>_<name>\`\` under it.
"""

from __future__ import annotations

from typing import Final

#: The prefix of every system metric.
SYSTEM_METRIC_PREFIX: Final = ${JSON.stringify(data.prefix)}

#: The host's metrics: name → unit.
HOST_METRICS: Final[dict[str, str]] = {
${entries(data.host)}
}

#: Each GPU's metrics (\`\`gpu_<index>_<name>\`\`): name → unit.
GPU_METRICS: Final[dict[str, str]] = {
${entries(data.gpu)}
}
`;

writeGenerated({
  'packages/proto/src/gen/system_metrics.ts': ts,
  'packages/python-client/src/training_callbacks/_system_metrics.py': py,
});
console.log('generate-system-metrics: the system metric names → TS, Python');
