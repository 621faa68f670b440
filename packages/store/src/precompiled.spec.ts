import type { MikroORM } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboxItem, TrainingJob, TrainingMetric } from './entities.ts';
import { HotQueries } from './hot-queries.ts';
import { compileOutboxReaderPlan } from './outbox-queries.ts';
import { checkColumns, decodeRow } from './portable-query.ts';
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

describe('portable queries (the outbox reader’s plan)', () => {
  it('say how each parameter is bound and how each column is read', () => {
    const plan = compileOutboxReaderPlan(orm);
    // nextAttemptAtMs is a bigint column: MikroORM binds its values as text; the LIMIT as given.
    expect(plan.dueJobs.params).toEqual([
      { slot: 'nowMs', bind: 'string' },
      { slot: 'limit', bind: 'value' },
    ]);
    expect(plan.nextDueAtMs.params).toEqual([{ constant: 1 }]);
    expect(plan.peek.columns.job_id).toEqual({ property: 'job', decode: 'as-is' });
    expect(plan.peek.columns.created_at_ms).toEqual({ property: 'createdAtMs', decode: 'number' });
    expect(plan.block.columns.names).toEqual({ property: 'names', decode: 'json' });
    expect(plan.block.columns.values).toEqual({ property: 'values', decode: 'buffer' });
    expect(
      decodeRow(plan.peek, { id: 3, job_id: 'j', payload: '{"a":"NaN"}', created_at_ms: 5, pending: 2 }),
    ).toEqual({ id: 3, job: 'j', payload: { a: 'NaN' }, createdAtMs: 5, pending: 2 });
    // Dates need MikroORM: a query returning one is refused when its statement is prepared.
    expect(plan.mirrorState.columns.created_at).toEqual({ property: 'createdAt', decode: 'unsupported' });
    expect(() => checkColumns(plan.mirrorState, ['mlflow_run_id', 'created_at'])).toThrow(/without MikroORM/);
  });

  it('refuse what plain data cannot say', () => {
    const compiler = new HotQueryCompiler(orm);
    // A JSON value is serialized by MikroORM: the plan could not bind it.
    expect(() =>
      compiler.compilePortable({
        name: 'jsonValue',
        slots: { payload: [OutboxItem, 'payload'] },
        build: (db, v) =>
          db
            .selectFrom('OutboxItem')
            .select('id')
            .where('payload', '=', v.payload as never),
        samples: [{ payload: { a: 1 } }],
        reads: OutboxItem,
      }),
    ).toThrow(/plain data cannot say/);
    expect(() =>
      compiler.compilePortable({
        name: 'noEntity',
        slots: { jobId: [TrainingJob, 'jobId'] },
        build: (db, v) =>
          db
            .selectFrom('TrainingJob')
            .select('status')
            .where('jobId', '=', v.jobId as string),
        samples: [{ jobId: 'j' }],
      }),
    ).toThrow(/which entity/);
  });
});
