// Exports the catalog as data for every other language and for people: catalog.json (machine-readable,
// the same content the sidecar serves over GetMetricCatalog) and docs/metric-catalog.md (a table per
// task). Run through `npm run generate` at the workspace root; CI fails when the committed files differ.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { listTaskCatalogs } from '../src/index.ts';

const here = import.meta.dirname;
const catalogs = listTaskCatalogs();
writeFileSync(path.join(here, '..', 'catalog.json'), `${JSON.stringify(catalogs, null, 2)}\n`);

const formatText = { percent: 'percent (fraction in [0, 1])', float: 'float', int: 'int' } as const;
const lines = [
  '# Metric catalog',
  '',
  '_Generated from `packages/metric-catalog` by `npm run generate`; do not edit. Machine-readable: `packages/metric-catalog/catalog.json`, or GetMetricCatalog on a running sidecar._',
  '',
  'Every task has a **primary** metric (it picks the best epoch), **standard** metrics (defined here), and any number of',
  '**custom** metrics (stored as reported). Framework names on the right are normalised to the canonical name on the left;',
  'a scale other than 1 converts units (timm reports top-1 in percent).',
];
for (const catalog of catalogs) {
  lines.push('', `## ${catalog.task}`, '', `Primary metric: \`${catalog.primaryMetric}\``, '');
  lines.push(
    '| name | label | format | better | description | framework names |',
    '|---|---|---|---|---|---|',
  );
  for (const d of catalog.standardMetrics) {
    const aliases = catalog.aliases
      .filter((a) => a.name === d.name)
      .map((a) => `\`${a.alias}\`${a.scale === 1 ? '' : ` (×${a.scale})`}`)
      .join(', ');
    lines.push(
      `| \`${d.name}\` | ${d.label} | ${formatText[d.format]} | ${d.higherIsBetter ? 'higher' : 'lower'} | ${d.description} | ${aliases} |`,
    );
  }
  if (catalog.trainingValidationPairs.length > 0) {
    lines.push(
      '',
      'When a framework reports a metric twice in one report, on the training and on the validation data, the validation value is the one that counts (it picks the best epoch):',
      '',
      '| framework | when both are reported | the training name is read as | the validation name is read as |',
      '|---|---|---|---|',
    );
    for (const p of catalog.trainingValidationPairs) {
      const validation = catalog.aliases.find((a) => a.alias === p.validation)?.name ?? p.validation;
      lines.push(
        `| ${p.framework} | \`${p.training}\` and \`${p.validation}\` | \`${p.trainingName}\` | \`${validation}\` |`,
      );
    }
  }
}
writeFileSync(path.join(here, '..', '..', '..', 'docs', 'metric-catalog.md'), `${lines.join('\n')}\n`);
console.log(`export-catalog: ${catalogs.length} task catalogs → catalog.json, docs/metric-catalog.md`);
