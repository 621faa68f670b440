import { defineConfig } from 'vitest/config';
import base from './vitest.postgres.config.ts';
export default defineConfig(async (env) => {
  const b = typeof base === 'function' ? await (base as (e: unknown) => unknown)(env) : base;
  const cfg = b as { test: Record<string, unknown> };
  return { ...cfg, test: { ...cfg.test, include: (process.env.PGTRY ?? '').split(',').map((f) => `src/${f}.spec.ts`) } };
});
