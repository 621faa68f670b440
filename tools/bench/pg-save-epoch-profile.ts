// Where PostgreSQL's time goes in one end-epoch report: the server-side cost of `tc_save_epoch` (the one
// call a report makes on PostgreSQL, see packages/store/src/hot-path.ts) with one part at a time taken out,
// beside the end-epoch yardstick's upsert (tools/bench/bare-server-postgres.ts) and a bare round trip.
// It answers "which statement would I have to drop to reach the PostgreSQL p50 target" with numbers; the
// variants are measurements only, never installed anywhere but in this script's throwaway database.
//
// pgbench (extended protocol, as the `pg` driver sends unnamed statements; 1 client) calls each variant
// for a few seconds, in rounds that interleave the variants so that the host's noise falls on all of them;
// the table gives each one's median over the rounds. The sidecar migrates the database and begins the job
// the calls report to (the built bundle, so run `npm run prebench:store` first):
//   node --conditions=@training-callbacks/source tools/bench/pg-save-epoch-profile.ts [--rounds 5] [--seconds 6]
import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createClient } from '@training-callbacks/grpc-adapter';
import { startPostgres } from '@training-callbacks/postgres-testing';
import { TrainingCallbacks as Service, TaskType } from '@training-callbacks/proto';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { latencyStats } from './latency-stats.ts';

const { values: flags } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '6' } },
});
const rounds = Number(flags.rounds);
const seconds = Number(flags.seconds);

const METRICS = `'{"top5_accuracy":0.9,"train_loss":0.5,"val_loss":0.6}'::jsonb`;
/** One report of a new epoch, as the sidecar sends it (the job's current row version read in place). */
const SAVE_CALL = `\\set e random(1, 2000000000)
select tc_save_epoch('job'::varchar, :e::int, (select xmin from training_job where job_id = 'job'), :e::int,
  0.7::float8, now(), 0.5::float8, 0.7::float8, 0.001::float8, ${METRICS}, '{}'::jsonb, now(), '[]'::jsonb,
  1::bigint, 1413694278::bigint);
`;
const YARDSTICK_CALL = `\\set e random(1, 2000000000)
insert into bare_epoch (job, epoch, metrics) values ('job', :e, ${METRICS})
  on conflict (job, epoch) do update set metrics = excluded.metrics;
`;
const ROUND_TRIP = 'a round trip (one index lookup)';
/** The least a call can cost: a round trip and an index lookup (also inside SAVE_CALL's arguments). */
const ROUND_TRIP_CALL = `select xmin from training_job where job_id = 'job';\n`;

/** `tc_save_epoch` with one part taken out (each a rewrite of the installed function's source). */
const VARIANTS: readonly { name: string; rewrite: (source: string) => string }[] = [
  { name: 'tc_save_epoch as installed', rewrite: (s) => s },
  { name: 'without the feed’s advisory lock', rewrite: (s) => withoutLock(s) },
  { name: 'without the feed row (nor its lock)', rewrite: (s) => withoutFeedRow(withoutLock(s)) },
  { name: 'without the epoch row’s upsert', rewrite: (s) => s.replace(EPOCH_UPSERT, '') },
  {
    name: 'epoch row by INSERT or UPDATE, not ON CONFLICT',
    rewrite: (s) =>
      s.replace(
        EPOCH_UPSERT,
        (_m, head: string) =>
          `if v_new then insert into training_metric${head}; else update training_metric set loss = p_loss, ` +
          'accuracy = p_accuracy, learning_rate = p_learning_rate, extra_metrics = p_metrics, ' +
          'non_finite = p_non_finite, "timestamp" = p_timestamp where job_id = p_job and epoch = p_epoch; end if;',
      ),
  },
];
const EPOCH_UPSERT = /insert into training_metric([^;]*?)on conflict[^;]*;/;
const withoutLock = (s: string) => s.replace(/perform pg_advisory_xact_lock\(p_feed_lock\);/, '');
const withoutFeedRow = (s: string) => s.replace(/insert into store_change[^;]*;/, '');

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tc-save-epoch-profile-'));
  await using pg = await startPostgres({ database: 'profile' });
  const url = pg.url;
  const sidecar = await startSidecarProcess({
    dataDir: dir,
    cwd: dir,
    dbPath: url,
    args: ['--quiet'],
    entry: 'dist',
  });
  try {
    const client = createClient(Service, sidecar.address);
    await client.beginTraining({
      jobId: 'job',
      taskType: TaskType.IMAGE_CLASSIFICATION,
      framework: 'profile',
    });
    client.close();
  } finally {
    await sidecar.stop();
  }
  await pg.sql('create table bare_epoch (job text, epoch integer, metrics jsonb, primary key (job, epoch))');
  const installed = (await pg.sql(`select pg_get_functiondef('tc_save_epoch'::regproc)`))[0]?.[0] ?? '';
  for (const v of VARIANTS.slice(1)) {
    if (v.rewrite(installed) === installed)
      throw new Error(`"${v.name}" changes nothing: tc_save_epoch changed`);
  }
  const files = {
    save: path.join(dir, 'save.sql'),
    yardstick: path.join(dir, 'yardstick.sql'),
    trip: path.join(dir, 'trip.sql'),
  };
  await writeFile(files.save, SAVE_CALL);
  await writeFile(files.yardstick, YARDSTICK_CALL);
  await writeFile(files.trip, ROUND_TRIP_CALL);

  const results = new Map<string, number[]>();
  const record = (name: string, ms: number) => results.set(name, [...(results.get(name) ?? []), ms]);
  console.log(
    `PostgreSQL ${pg.version}: ${rounds} rounds × ${VARIANTS.length + 2} calls of ${seconds} s each`,
  );
  for (let round = 1; round <= rounds; round++) {
    for (const v of VARIANTS) {
      await pg.sql(v.rewrite(installed));
      record(v.name, pgbench(url, files.save));
    }
    await pg.sql(installed);
    record('the yardstick’s upsert', pgbench(url, files.yardstick));
    record(ROUND_TRIP, pgbench(url, files.trip));
    // Only dead row versions are cleaned between rounds; the tables keep the reports. (Deleting them all
    // made the call that came next 3× slower for seconds, likely plans made on an emptied table.)
    await pg.sql('vacuum training_job, training_metric, store_change');
    console.log(`round ${round}/${rounds} done`);
  }
  const trip = latencyStats(results.get(ROUND_TRIP)!).p50;
  console.log('\n| call | server time per call, median (ms) | over a round trip (ms) | each round (ms) |');
  console.log('|---|---|---|---|');
  for (const [name, values] of results) {
    const m = latencyStats(values).p50;
    console.log(
      `| ${name} | ${m.toFixed(3)} | ${(m - trip).toFixed(3)} | ${values.map((x) => x.toFixed(3)).join(', ')} |`,
    );
  }
}

/** pgbench's "latency average" of one script run for `seconds` on one connection. */
function pgbench(url: string, file: string): number {
  let out: string;
  try {
    out = execFileSync(
      'pgbench',
      ['-n', '-M', 'extended', '-c', '1', '-T', String(seconds), '-f', file, url],
      {
        encoding: 'utf8',
      },
    );
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error('pgbench not found: install the postgresql package (Debian) and run again');
    throw new Error(`pgbench failed: ${e.stderr ?? e.message}`);
  }
  const m = /latency average = ([\d.]+) ms/.exec(out);
  if (!m) throw new Error(`pgbench printed no latency average:\n${out}`);
  return Number(m[1]);
}

await main();
