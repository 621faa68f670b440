import { describe, expect, it } from 'vitest';
import { createMetricClassifier } from './metric-classifier.ts';
import { isSystemMetric, SYSTEM_METRIC_PREFIX } from './system-metric.ts';
import { listTaskCatalogs } from './task-catalog.ts';

describe('system metrics', () => {
  it('are the names under MLflow’s system/ prefix', () => {
    expect(SYSTEM_METRIC_PREFIX).toBe('system/');
    expect(isSystemMetric('system/gpu_0_utilization_percentage')).toBe(true);
    expect(isSystemMetric('system/cpu_utilization_percentage')).toBe(true);
    expect(isSystemMetric('system/')).toBe(false);
    expect(isSystemMetric('systems/cpu')).toBe(false);
    expect(isSystemMetric('train/system/x')).toBe(false);
    expect(isSystemMetric('System/cpu_utilization_percentage')).toBe(false);
  });

  it('keep their names through every task’s catalog (no alias takes them) and are custom', () => {
    const names = ['system/cpu_utilization_percentage', 'system/gpu_0_memory_usage_megabytes'];
    for (const catalog of listTaskCatalogs()) {
      const classifier = createMetricClassifier(catalog.task);
      expect(classifier.normaliseNames(names).map((n) => [n.name, n.scale])).toEqual(
        names.map((n) => [n, 1]),
      );
      expect(catalog.aliases.filter((a) => isSystemMetric(a.alias))).toEqual([]);
      const verdicts = classifier.classify({ 'system/gpu_0_utilization_percentage': 87 });
      expect(verdicts.map((v) => v.tier)).toEqual(['custom']);
    }
  });
});
