// `import-csv FILE --job ID`: an Ultralytics results.csv reported through the TS client, as the Python
// importer does (the rules of proto/results-csv.json): BeginTraining, EndEpoch per row, EndTraining.
import { readFile } from 'node:fs/promises';
import { toJson } from '@bufbuild/protobuf';
import { RpcError, Status, TrainingCallbacks, toTaskType } from '@training-callbacks/client';
import {
  displayStatus,
  JobSchema,
  MetricTier,
  RESULTS_CSV_DEFAULT_TASK_TYPE,
  RESULTS_CSV_FRAMEWORK,
} from '@training-callbacks/proto';
import type { ClientContext } from './command-context.ts';
import { UsageError } from './exit-codes.ts';
import { bestText } from './job-format.ts';
import { ResultsCsvError, readResultsCsv } from './results-csv.ts';

/** Options of `import-csv`. */
export interface ImportOptions {
  job: string;
  task?: string;
  model?: string;
  runName?: string;
  end?: boolean;
  json?: boolean;
}

export async function importResultsCsv(
  context: ClientContext,
  file: string,
  options: ImportOptions,
): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let epochs: ReturnType<typeof readResultsCsv>;
  try {
    epochs = readResultsCsv(text);
  } catch (error) {
    if (error instanceof ResultsCsvError) throw new UsageError(`${file}: ${error.message}`);
    throw error;
  }
  if (epochs.length === 0) throw new UsageError(`${file} holds no epoch rows; nothing to import`);
  let taskType: ReturnType<typeof toTaskType>;
  try {
    taskType = toTaskType(options.task ?? RESULTS_CSV_DEFAULT_TASK_TYPE);
  } catch (error) {
    throw new UsageError(`--task: ${(error as RpcError).message}`);
  }
  const { out, connection } = context;
  await using callbacks = new TrainingCallbacks({
    ...connection.options,
    jobId: options.job,
    taskType,
    framework: RESULTS_CSV_FRAMEWORK,
    deadlineMs: connection.timeoutMs,
    // Not a training loop: a report that fails must fail the command (exit code and message), not
    // be queued in the background while it prints empty summaries. Retried within --timeout.
    strict: true,
    retry: { maxRetryTimeMs: connection.timeoutMs },
    ...(options.model !== undefined && { modelName: options.model }),
    ...(options.runName !== undefined && { runName: options.runName }),
  });
  const begun = await callbacks.onTrainBegin();
  out.message(
    `${begun.resumed ? 'continuing' : 'began'} job ${options.job} on ${connection.address}; importing ${epochs.length} epochs from ${file}`,
  );
  for (const { epoch, metrics } of epochs) {
    if (context.signal.aborted)
      throw new RpcError(
        Status.CANCELLED,
        'interrupted; run the same command again to finish (epochs already sent are replaced, not repeated)',
      );
    const { summary, verdicts } = await callbacks.onEpochEnd(epoch, metrics);
    out.message(summary);
    for (const verdict of verdicts) {
      if (verdict.tier === MetricTier.REJECTED)
        out.message(out.styleErr('yellow', `  ${verdict.reportedName}: ${verdict.reason}`));
    }
  }
  let job = begun.job;
  if (options.end === false) {
    await callbacks.flush();
    job =
      (await callbacks.client.getJob({ jobId: options.job }, { deadline: connection.timeoutMs })).job ?? job;
  } else {
    job = (await callbacks.onTrainEnd()).job ?? job;
  }
  if (options.json) out.data(JSON.stringify(toJson(JobSchema, job!)));
  else
    out.data(`${options.job}  ${displayStatus(job!)}  ${job!.epochsReported} epochs  best ${bestText(job!)}`);
  return 0;
}
