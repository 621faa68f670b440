// A best-epoch rule for the store's specs: the rule the sidecar gives, without the catalog.
import type { BestEpochRule } from '../types.ts';

/** Higher is better, as accuracy; among equal values the earlier epoch. */
export const highest =
  (epoch: number, value: number): BestEpochRule =>
  async (incumbent, others) => {
    if (incumbent === null || incumbent.epoch === epoch) {
      let best = { epoch, value };
      for (const [e, v] of await others())
        if (v > best.value || (v === best.value && e < best.epoch)) best = { epoch: e, value: v };
      return best;
    }
    return value > incumbent.value ? { epoch, value } : incumbent;
  };
