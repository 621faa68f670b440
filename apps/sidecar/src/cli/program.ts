// The `training-callbacks` command tree (commander). Every command has --help; client commands share
// the connection flags; `serve` hands its arguments untouched to the sidecar's own parser (config.ts),
// so its flags are defined once.
import { TASK_TYPE_NAMES } from '@training-callbacks/client';
import {
  DISPLAY_STATUSES,
  RESULTS_CSV_DEFAULT_TASK_TYPE,
  RESULTS_CSV_RULES,
} from '@training-callbacks/proto';
import { Command, CommanderError, Option } from 'commander';
import { serve } from '../serve.ts';
import type { ClientContext, CommandContext } from './command-context.ts';
import { addConnectionOptions, type CliConnection, openConnection } from './connection.ts';
import { copyStore } from './database.ts';
import { CLI_EXIT_CODES, cliExitCodesHelp, describeFailure, UsageError } from './exit-codes.ts';
import { EXPORT_COLUMNS, EXPORT_FORMATS, exportEpochs } from './export-epochs.ts';
import { importResultsCsv } from './import-csv.ts';
import { listJobs, showJob, watchJob, watchJobs } from './jobs.ts';
import { mlflowRemirror, mlflowRetry, mlflowStatus } from './mlflow.ts';
import { type CliIo, Output } from './output.ts';

const ENVIRONMENT_HELP = `
Environment:
  TRAINING_CALLBACKS_ADDRESS, _TOKEN, _TOKEN_FILE, _CA_FILE, _CLIENT_CERT_FILE, _CLIENT_KEY_FILE
                 connection defaults, as for the TypeScript and Python clients (a flag wins)
  NO_COLOR       set (to anything but "") to print no colours; colours are only used on a terminal

Output: data (tables, JSON, NDJSON, CSV) goes to stdout, messages and errors to stderr.

Exit codes:
${cliExitCodesHelp()}`;

/** Parses `argv` (without node and the script) and runs the command; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo, signal: AbortSignal): Promise<number> {
  const out = new Output(io);
  let exitCode: number = CLI_EXIT_CODES.ok.code;
  const base: CommandContext = { out, signal };

  /** Wraps a client command's action: connect, run, map failures to an exit code and a hint. */
  const client =
    <A extends unknown[]>(action: (context: ClientContext, ...args: A) => Promise<number>) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      const values = command.opts();
      let connection: CliConnection | undefined;
      try {
        connection = openConnection(values, io.env);
        exitCode = await action({ ...base, connection }, ...(args.slice(0, -1) as A));
      } catch (error) {
        const failure = describeFailure(
          error,
          connection ?? { address: String(values.address ?? ''), tls: false },
        );
        out.error(failure.message);
        exitCode = failure.code;
      } finally {
        connection?.client.close();
      }
    };

  const program = new Command('training-callbacks')
    .description(
      'The TrainingCallbacks sidecar and its command line: run the sidecar (serve), look at jobs live, ' +
        'export and import epochs, and operate the MLflow mirror.',
    )
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) =>
        write(`${out.styleErr('red', 'training-callbacks:')} ${text.replace(/^error: /, '')}`),
    })
    .exitOverride()
    .showHelpAfterError('(run the command with --help to see its usage)')
    .helpCommand('help [command]', 'show the help of a command')
    .addHelpText('after', ENVIRONMENT_HELP);

  program
    .command('serve')
    .summary('run the sidecar (`serve --help` lists its flags)')
    .description(
      'run the sidecar (the gRPC service next to a trainer) until SIGTERM/SIGINT; `serve --help` lists its flags',
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (_options, command: Command) => {
      exitCode = await serve(command.args, io.env);
    });

  const jobs = program.command('jobs').description('list, show and watch jobs');
  addConnectionOptions(
    jobs
      .command('list')
      .summary('the jobs, newest first')
      .description(
        'the jobs, newest first: status, task, model, best epoch and value (formatted by the catalog), MLflow sync',
      )
      .addOption(new Option('--status <STATUS>', 'only jobs with this status').choices(DISPLAY_STATUSES))
      .addOption(new Option('--task <TASK>', 'only jobs of this task type').choices(TASK_TYPE_NAMES))
      .option('--limit <N>', 'at most N jobs')
      .option('--json', 'a JSON array of jobs (proto3 JSON mapping of trainingcallbacks.v1.Job)'),
  ).action(client(listJobs));
  addConnectionOptions(
    jobs
      .command('show')
      .summary('one job and its epochs')
      .description('one job and its epochs (the best epoch marked *)')
      .argument('<JOB>', 'the job id')
      .option('--json', '{"job": Job, "epochs": [EpochRecord…]} in proto3 JSON'),
  ).action(client(showJob));
  addConnectionOptions(
    jobs
      .command('watch')
      .summary('follow every job, or one, live')
      .description(
        'follow the job list, or one job (its status, epochs, batch blocks, artifacts, MLflow sync), live;\n' +
          'a dropped connection is resumed after the last seq received, with no gap and no duplicate.\n' +
          'Starts with the history kept (one event per job or epoch) unless --from-head; Ctrl-C ends it (exit 0).',
      )
      .argument('[JOB]', 'the job id; omitted: every job')
      .option('--json', 'NDJSON: one WatchJobsResponse / WatchJobResponse (proto3 JSON) per line')
      .option('--after-seq <SEQ>', 'resume after this seq (the "seq" of the last event you saw)')
      .option('--from-head', 'only changes from now on')
      .option('--heartbeats', 'also print the heartbeats the sidecar sends while nothing changes')
      .option('--reconnect-for <S>', 'give up after S seconds of failed reconnects', '300')
      .option(
        '--stall-timeout <S>',
        'reconnect when nothing, not even a heartbeat (every 15 s by default), came for S seconds',
        '60',
      ),
  ).action(
    client((context, jobId: string | undefined, options: Parameters<typeof watchJobs>[1]) =>
      jobId === undefined ? watchJobs(context, options) : watchJob(context, jobId, options),
    ),
  );

  addConnectionOptions(
    program
      .command('export')
      .summary("a job's epochs as CSV or JSON")
      .description(
        `a job's epochs, one row per epoch: ${EXPORT_COLUMNS.join(', ')}, then every metric\n` +
          '(CSV: one column each, empty when an epoch lacks it; JSON: an array of rows with extra_metrics).',
      )
      .argument('<JOB>', 'the job id')
      .addOption(new Option('--format <FORMAT>', 'output format').choices(EXPORT_FORMATS).default('csv')),
  ).action(client(exportEpochs));

  addConnectionOptions(
    program
      .command('import-csv')
      .summary('report an Ultralytics results.csv as a job')
      .description(
        'report an Ultralytics results.csv as a job (BeginTraining, EndEpoch per row, EndTraining), as the ' +
          "Python client's training_callbacks.ultralytics.import_results_csv does",
      )
      .addHelpText(
        'after',
        `\nRules (proto/results-csv.json, shared with the Python importer):\n${RESULTS_CSV_RULES.map((r) => `  - ${r}`).join('\n')}`,
      )
      .argument('<FILE>', 'the results.csv')
      .requiredOption(
        '--job <ID>',
        'the job id to report under (an existing job is continued; its epochs replaced)',
      )
      .addOption(
        new Option('--task <TASK>', 'the task type')
          .choices(TASK_TYPE_NAMES)
          .default(RESULTS_CSV_DEFAULT_TASK_TYPE),
      )
      .option('--model <NAME>', 'the model name, e.g. yolo11n')
      .option('--run-name <NAME>', "the MLflow run's name (default job_<ID>)")
      .option('--no-end', 'leave the job running (default: end it as completed)')
      .option('--json', 'print the job afterwards as JSON'),
  ).action(client(importResultsCsv));

  const mlflow = program.command('mlflow').description('the MLflow mirror: sync status and repairs');
  addConnectionOptions(
    mlflow
      .command('status')
      .summary('MLflow sync of every job, or one')
      .description(
        'how far each job (or JOB) is behind in MLflow: pending items, the oldest one’s age, a parked error',
      )
      .argument('[JOB]', 'the job id; omitted: every job')
      .option('--json', 'JSON (mlflowSync in proto3 JSON)'),
  ).action(client(mlflowStatus));
  addConnectionOptions(
    mlflow
      .command('retry')
      .summary('retry a job’s sync now')
      .description('retry a job’s sync now (RetryMlflowSync): clears a parked error once its cause is fixed')
      .argument('<JOB>', 'the job id')
      .option('--json', 'JSON'),
  ).action(client(mlflowRetry));
  addConnectionOptions(
    mlflow
      .command('remirror')
      .summary('copy a job into MLflow again')
      .description(
        'copy a job into MLflow again, whole (RemirrorMlflowRun): for a run that vanished from MLflow',
      )
      .argument('<JOB>', 'the job id')
      .option('--json', 'JSON'),
  ).action(client(mlflowRemirror));

  const db = program.command('db').description('the database: move a store to another one');
  db.command('copy')
    .summary('copy every job from one database into an empty one')
    .description(
      'copy every job, epoch, batch point, artifact record, MLflow outbox item and change of the store at ' +
        '--from into the empty store at --to (an SQLite file or postgres://…; migrations are applied to both): ' +
        'the move from one SQLite file per pod to a shared PostgreSQL. Stop the sidecars on both first.',
    )
    .requiredOption('--from <DB>', 'the database copied from: an SQLite file or postgres://user@host/db')
    .requiredOption('--to <DB>', 'the empty database copied into: postgres://user@host/db or an SQLite file')
    .option('--json', 'print the rows copied per table as JSON')
    .action(async (options: { from: string; to: string; json?: boolean }) => {
      exitCode = await copyStore(base, options);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // --help and help: 0. A usage mistake, or no command at all (help on stderr): 2.
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
      return CLI_EXIT_CODES.ok.code;
    if (error.code === 'commander.help' && error.exitCode === 0) return CLI_EXIT_CODES.ok.code;
    return CLI_EXIT_CODES.usage.code;
  }
  return exitCode;
}

export { UsageError };
