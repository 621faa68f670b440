import type { MikroORM } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrainingMetric } from './entities.ts';
import { HotQueries } from './hot-queries.ts';
import { HotQueryCompiler } from './precompiled.ts';
import { openSqliteOrm } from './sqlite-dialect.ts';

let orm: MikroORM;
beforeAll(async () => {
  orm = await openSqliteOrm({ dbPath: ':memory:' });
});
afterAll(async () => {
  await orm.close(true);
});

const at = new Date('2026-03-04T05:06:07.089Z');

describe('precompiled hot queries', () => {
  it('pass the self-check: same SQL and parameters as the query builder', () => {
    const hot = new HotQueries(orm);
    expect(hot.epochUpsert.sql).toMatch(/^insert into "training_metric" .* on conflict/);
    expect(hot.outboxInsert).toHaveLength(8);
    // Dates and JSON converted as the MikroORM plugin converts them; order of the compiled SQL.
    expect(
      hot.epochUpsert.params({
        job: 'j',
        epoch: 1,
        loss: null,
        accuracy: 0.5,
        learningRate: null,
        extraMetrics: { loss: 'NaN', accuracy: 0.5 },
        nonFinite: ['loss'],
        timestamp: at,
      }),
    ).toEqual(['j', 1, null, 0.5, null, '{"loss":"NaN","accuracy":0.5}', '["loss"]', at.getTime()]);
  });

  it('refuses a query whose parameters differ from the builder’s (the self-check)', () => {
    const compiler = new HotQueryCompiler(orm);
    // extraMetrics converted as an integer column: the builder would send JSON text.
    expect(() =>
      compiler.compile({
        name: 'wrongConversion',
        slots: { job: [TrainingMetric, 'job'], extraMetrics: [TrainingMetric, 'epoch'] },
        build: (db, v) =>
          db
            .updateTable('TrainingMetric')
            .set({ extraMetrics: v.extraMetrics as never })
            .where('job', '=', v.job as string),
        samples: [{ job: 'j', extraMetrics: { a: 1 } }],
      }),
    ).toThrow(/differs from the query builder/);
    // A value the builder does not send as a parameter.
    expect(() =>
      compiler.compile({
        name: 'unused',
        slots: { job: [TrainingMetric, 'job'], epoch: [TrainingMetric, 'epoch'] },
        build: (db, v) =>
          db
            .selectFrom('TrainingMetric')
            .select('id')
            .where('job', '=', v.job as string),
        samples: [{ job: 'j', epoch: 1 }],
      }),
    ).toThrow(/epoch is not a parameter/);
  });
});
