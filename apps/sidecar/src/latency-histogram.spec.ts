import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from './latency-histogram.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const SAMPLES = [0.0002, 0.001, 0.004, 0.01, 0.05, 0.5, 3, 0.0009];

describe('LatencyHistogram', () => {
  it("exposes what prom-client's Histogram exposes for the same observations", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const options = { name: 'op_seconds', help: 'Duration, by operation', buckets: BUCKETS };
    const histogram = new LatencyHistogram({ ...options, registers: [ours] });
    const reference = new Histogram({ ...options, labelNames: ['operation'], registers: [theirs] });
    const save = histogram.child({ operation: 'save' });
    const end = histogram.child({ operation: 'end' });
    for (const [i, seconds] of SAMPLES.entries()) {
      const operation = i % 3 === 0 ? 'end' : 'save';
      (operation === 'end' ? end : save).observe(seconds);
      reference.observe({ operation }, seconds);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('op_seconds_bucket{le="0.01",operation="save"} 3');
  });

  it('shows a series from its first observation, and counts on after a reset', async () => {
    const registry = new Registry();
    const histogram = new LatencyHistogram({
      name: 'x_seconds',
      help: 'x',
      buckets: BUCKETS,
      registers: [registry],
    });
    const child = histogram.child({ method: 'EndEpoch' });
    expect(await registry.metrics()).not.toContain('x_seconds_count');
    child.observe(0.002);
    expect(await registry.metrics()).toContain('x_seconds_count{method="EndEpoch"} 1');
    registry.resetMetrics();
    child.observe(0.2);
    const text = await registry.metrics();
    expect(text).toContain('x_seconds_count{method="EndEpoch"} 1');
    expect(text).toContain('x_seconds_bucket{le="0.1",method="EndEpoch"} 0');
    expect(text).toContain('x_seconds_sum{method="EndEpoch"} 0.2');
  });
});
