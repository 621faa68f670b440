import { applyScale } from './apply-scale.ts';
import { CatalogError } from './catalog-error.ts';
import type { MetricDefinition, TaskCatalog } from './metric-definition.ts';
import { checkMetricName } from './metric-name.ts';
import { getTaskCatalog } from './task-catalog.ts';
import type { TaskType } from './task-type.ts';

/** Which tier of the catalog a reported metric landed in. */
export type MetricTier = 'primary' | 'standard' | 'custom' | 'rejected';

/** What became of one reported metric. */
export interface MetricVerdict {
  /** The name as reported. */
  reportedName: string;
  /** The canonical name it is stored under; `''` when rejected. */
  name: string;
  /** The tier it landed in. */
  tier: MetricTier;
  /** The value after unit conversion (NaN and ±Infinity kept as they are). */
  value: number;
  /** Why the metric was rejected, or a note such as `converted from percent (×0.01)` or `not finite`; `''` otherwise. */
  reason: string;
  /** The standard or custom definition; present only for accepted metrics that have one. */
  definition?: MetricDefinition;
}

/** Normalises and classifies the metrics of one job, with the job's task and custom definitions. */
export interface MetricClassifier {
  /** The task type. */
  readonly task: TaskType;
  /** The task's catalog. */
  readonly catalog: TaskCatalog;
  /** Maps an alias to its canonical name and scale; any other name is returned unchanged with scale 1. */
  normaliseName(reported: string): { name: string; scale: number };
  /**
   * Normalises the names of one report together: like {@link normaliseName}, except that the training
   * name of a training/validation pair whose validation name is reported too is read as its training
   * metric (Keras' `accuracy` next to `val_accuracy` → `train_accuracy`); `note` then says so.
   */
  normaliseNames(reported: readonly string[]): { name: string; scale: number; note?: string }[];
  /** The standard or custom definition of a canonical name. */
  definitionOf(name: string): MetricDefinition | undefined;
  /**
   * Returns one verdict per reported name, sorted by reported name (UTF-16 code unit order, the same as
   * a plain `sort()`). Names must already have passed {@link checkMetricName}.
   */
  classify(metrics: Readonly<Record<string, number>>): MetricVerdict[];
}

const FORMATS: ReadonlySet<string> = new Set(['percent', 'float', 'int']);

/**
 * Creates the classifier of a job.
 *
 * @param customDefinitions definitions of the job's custom metrics (from BeginTraining), so that they
 *   display with a label and format and so that `percent` ones are range-checked.
 * @throws CatalogError when the task is unknown, or a custom definition has a bad name or format,
 *   redefines a standard metric or an alias of one, or repeats a name.
 */
export function createMetricClassifier(
  task: TaskType,
  customDefinitions: readonly MetricDefinition[] = [],
): MetricClassifier {
  const catalog = getTaskCatalog(task);
  const standard = new Map(catalog.standardMetrics.map((d) => [d.name, d]));
  const aliases = new Map(catalog.aliases.map((a) => [a.alias, a]));
  const custom = new Map<string, MetricDefinition>();

  for (const [index, definition] of customDefinitions.entries()) {
    const where = `custom metric #${index + 1}`;
    const nameProblem = checkMetricName(definition.name);
    if (nameProblem !== undefined) {
      throw new CatalogError(`${where}: ${nameProblem}`);
    }
    const name = definition.name;
    if (standard.has(name)) {
      throw new CatalogError(
        `${where}: '${name}' is a standard metric of ${task} and cannot be redefined; drop the definition or choose another name`,
      );
    }
    const alias = aliases.get(name);
    if (alias !== undefined) {
      throw new CatalogError(
        `${where}: '${name}' is an alias of the standard metric '${alias.name}' of ${task}; drop the definition or choose another name`,
      );
    }
    if (custom.has(name)) {
      throw new CatalogError(`${where}: '${name}' is defined twice; define each custom metric once`);
    }
    if (!FORMATS.has(definition.format)) {
      throw new CatalogError(
        `${where}: '${name}' has format ${JSON.stringify(definition.format)}; use 'percent', 'float' or 'int'`,
      );
    }
    custom.set(name, Object.freeze({ ...definition }));
  }

  const normaliseName = (reported: string): { name: string; scale: number } => {
    const alias = aliases.get(reported);
    return alias === undefined ? { name: reported, scale: 1 } : { name: alias.name, scale: alias.scale };
  };

  const pairs = new Map(catalog.trainingValidationPairs.map((p) => [p.training, p]));
  const normaliseNames = (reported: readonly string[]) => {
    const present = pairs.size > 0 ? new Set(reported) : undefined;
    return reported.map((name): { name: string; scale: number; note?: string } => {
      const pair = pairs.get(name);
      if (pair !== undefined && present?.has(pair.validation)) {
        return {
          name: pair.trainingName,
          scale: 1,
          note: `read as ${pair.trainingName}: ${pair.framework} reports the training value as '${name}' next to '${pair.validation}'`,
        };
      }
      return normaliseName(name);
    });
  };

  const definitionOf = (name: string): MetricDefinition | undefined => standard.get(name) ?? custom.get(name);

  // What classify derives from the names alone (their normalised names, which one wins each canonical
  // name), kept for the last set of names: a job reports the same names epoch after epoch, so a
  // report is then only its values' checks. (Names hold no control character: '\n' separates them.)
  let lastNames:
    | { key: string; normalised: ReturnType<typeof normaliseNames>; winners: Map<string, string> }
    | undefined;
  const namesPlan = (reportedNames: readonly string[]) => {
    const key = reportedNames.join('\n');
    if (lastNames?.key === key) return lastNames;
    const normalised = normaliseNames(reportedNames);
    // Canonical name → the reported name that is kept for it.
    const winners = new Map<string, string>();
    reportedNames.forEach((reported, i) => {
      const { name } = normalised[i]!;
      const current = winners.get(name);
      // Sorted order: the first one seen wins, unless a later one is the exact canonical spelling.
      if (current === undefined || (reported === name && current !== name)) {
        winners.set(name, reported);
      }
    });
    lastNames = { key, normalised, winners };
    return lastNames;
  };

  const classify = (metrics: Readonly<Record<string, number>>): MetricVerdict[] => {
    const reportedNames = Object.keys(metrics).sort();
    const { normalised, winners } = namesPlan(reportedNames);

    return reportedNames.map((reportedName, i): MetricVerdict => {
      const { name, scale, note } = normalised[i]!;
      const raw = metrics[reportedName] as number;
      const value = applyScale(raw, scale);
      const winner = winners.get(name);
      if (winner !== reportedName) {
        return {
          reportedName,
          name: '',
          tier: 'rejected',
          value,
          reason: `'${reportedName}' and '${winner}' both mean '${name}'; kept '${winner}' — report only one of them`,
        };
      }
      const definition = definitionOf(name);
      const notes: string[] = note === undefined ? [] : [note];
      if (scale !== 1) {
        notes.push(scale === 0.01 ? 'converted from percent (×0.01)' : `scaled ×${scale}`);
      }
      if (!Number.isFinite(value)) {
        notes.push('not finite');
      } else if (definition?.format === 'percent' && (value < 0 || value > 1)) {
        return {
          reportedName,
          name: '',
          tier: 'rejected',
          value,
          reason: percentRangeReason(reportedName, name, scale, raw, value),
        };
      }
      const tier = name === catalog.primaryMetric ? 'primary' : standard.has(name) ? 'standard' : 'custom';
      const verdict: MetricVerdict = { reportedName, name, tier, value, reason: notes.join('; ') };
      if (definition !== undefined) {
        verdict.definition = definition;
      }
      return verdict;
    });
  };

  return Object.freeze({ task, catalog, normaliseName, normaliseNames, definitionOf, classify });
}

function percentRangeReason(
  reportedName: string,
  name: string,
  scale: number,
  raw: number,
  value: number,
): string {
  if (scale !== 1) {
    // A scaled alias (timm's percentages): talk in the reported unit, which is what the trainer sends.
    const max = Number((1 / scale).toPrecision(12));
    return `${name} (reported as '${reportedName}' ×${scale}) is a fraction in [0, 1]; got ${raw} (${value} after ×${scale}) — report '${reportedName}' in [0, ${max}]`;
  }
  const via = reportedName === name ? '' : ` (reported as '${reportedName}')`;
  const base = `${name}${via} is a fraction in [0, 1]; got ${value}`;
  if (value > 1 && value <= 100) {
    return `${base} — report ${Number((value / 100).toPrecision(12))}`;
  }
  return `${base} — report a fraction between 0 and 1`;
}
