// A Prometheus histogram whose label sets are bound once (children), so that an observation is a few
// array bumps. prom-client's Histogram builds, validates and hashes its label object and looks its
// buckets up by stringified float keys on every observation, children included; with two of them on
// every EndEpoch (the call's duration, the commit's) that was ~4 % of the sidecar's CPU
// (--cpu-prof under EndEpoch load). The exposition is prom-client's own: the registry formats it.
import type { Metric, Registry } from 'prom-client';

/** One label set of a {@link LatencyHistogram}. */
export interface HistogramChild {
  observe(seconds: number): void;
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class LatencyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, Series>();

  constructor(options: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  /**
   * The series of `labels`, shown from its first observation (as prom-client's are); keep the child
   * rather than asking for it per observation.
   */
  child(labels: Readonly<Record<string, string>>): HistogramChild {
    const key = JSON.stringify(labels);
    const bounds = this.#bounds;
    const all = this.#series;
    let series = all.get(key);
    return {
      observe(seconds) {
        if (!series) {
          series = all.get(key);
          if (!series) {
            series = { labels: { ...labels }, counts: new Float64Array(bounds.length + 1), sum: 0, count: 0 };
            all.set(key, series);
          }
        }
        let i = 0;
        while (i < bounds.length && seconds > bounds[i]!) i++;
        series.counts[i]! += 1;
        series.sum += seconds;
        series.count += 1;
      },
    };
  }

  /** The values in prom-client's shape (cumulative `_bucket` per bound and `+Inf`, `_sum`, `_count`). */
  async get() {
    const values: {
      labels: Record<string, string | number>;
      sharedLabels: Record<string, string>;
      value: number;
      metricName: string;
    }[] = [];
    for (const { labels, counts, sum, count } of this.#series.values()) {
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += counts[i]!;
        values.push({
          labels: { le },
          sharedLabels: labels,
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({
        labels: { le: '+Inf' },
        sharedLabels: labels,
        value: count,
        metricName: `${this.name}_bucket`,
      });
      values.push({ labels: {}, sharedLabels: labels, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: labels, value: count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Zeroes every series (the registry's resetMetrics); bound children keep counting. */
  reset(): void {
    for (const series of this.#series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}
