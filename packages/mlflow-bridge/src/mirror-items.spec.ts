import { describe, expect, it } from 'vitest';
import { MetricSources, mlflowMetricName, mlflowMetrics } from './mirror-items.ts';

describe('MLflow metric names', () => {
  it('sends every member of an indexed family whose first member the catalog renames under one prefix', () => {
    // The catalog stores lr/pg0 as learning_rate (and YOLOv5's x/lr0 alike); the rest follow it.
    expect(['learning_rate', 'lr/pg1', 'lr/pg2', 'lr/pg10', 'x/lr1'].map(mlflowMetricName)).toEqual([
      'learning_rate',
      'learning_rate_pg1',
      'learning_rate_pg2',
      'learning_rate_pg10',
      'learning_rate_lr1',
    ]);
    // A task whose catalog would not alias the first member: it follows the same rule.
    expect(mlflowMetricName('lr/pg0')).toBe('learning_rate');
    // Other names, numbered or not, are left alone (eval_top1/eval_top5 are not a family of index 0).
    for (const name of ['mAP50', 'mAP50-95', 'eval_top5', 'grad_norm', 'lr', 'layer2', 'val/loss'])
      expect(mlflowMetricName(name)).toBe(name);
  });

  it('renames the keys of a report, never onto a name that is reported too', () => {
    expect(mlflowMetrics({ learning_rate: 0.01, 'lr/pg1': 0.02, accuracy: 0.5 })).toEqual({
      learning_rate: 0.01,
      learning_rate_pg1: 0.02,
      accuracy: 0.5,
    });
    expect(mlflowMetrics({ 'lr/pg1': 1, learning_rate_pg1: 2 })).toEqual({
      'lr/pg1': 1,
      learning_rate_pg1: 2,
    });
    // A user's key is data, also `__proto__` (the result has no prototype to collide with).
    const odd = mlflowMetrics({ ['__proto__']: 1 } as Record<string, number>);
    expect(Object.entries(odd)).toEqual([['__proto__', 1]]);
  });

  it('queues a rename or unit change once per job', () => {
    const sources = new MetricSources(2);
    const lr = { name: 'learning_rate', reported: 'lr/pg0', scale: 1 };
    const top1 = { name: 'accuracy', reported: 'eval_top1', scale: 0.01 };
    const plain = { name: 'grad_norm', reported: 'grad_norm', scale: 1 };
    expect(sources.unrecorded('a', [lr, top1, plain, lr])).toEqual([lr, top1]);
    sources.recorded('a', [lr, top1]);
    expect(sources.unrecorded('a', [lr, top1])).toEqual([]);
    expect(sources.unrecorded('b', [lr])).toEqual([lr]);
    // Another reported name behind the same MLflow name is recorded as well.
    expect(sources.unrecorded('a', [{ ...lr, reported: 'lr' }])).toHaveLength(1);
    // Bounded: the oldest job is forgotten (its sources would be queued again, which is harmless).
    sources.recorded('b', [lr]);
    sources.recorded('c', [lr]);
    expect(sources.unrecorded('a', [lr])).toEqual([lr]);
  });
});
