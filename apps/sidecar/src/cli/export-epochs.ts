// `export JOB --format csv|json`: one row per epoch, the seed's TrainingMetric columns (job_id, epoch,
// loss, accuracy, learning_rate — filled by the catalog's columnValues, as the store fills them) plus
// the epoch's time and every metric. Paged through ListEpochs: JSON is written page by page; CSV
// needs every metric name for its header first, so it holds the rows (one job's epochs) until the end.
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { columnValues } from '@training-callbacks/metric-catalog';
import type { EpochRecord } from '@training-callbacks/proto';
import { encodeNonFinite, type JsonNumber } from '@training-callbacks/store/number-codec';
import { type ClientContext, callOptions, everyItem, getJob } from './command-context.ts';
import { csvLine } from './csv.ts';
import { UsageError } from './exit-codes.ts';
import { JobMetrics } from './job-format.ts';

/** The export formats. */
export const EXPORT_FORMATS = ['csv', 'json'] as const;

/** The fixed columns, before one column per metric. */
export const EXPORT_COLUMNS = ['job_id', 'epoch', 'loss', 'accuracy', 'learning_rate', 'timestamp'] as const;

/** Metrics that columnValues puts into the fixed column of the same name: not repeated. */
const SAME_AS_COLUMN = new Set(['loss', 'accuracy', 'learning_rate']);

/** A metric's CSV column: its name, or `metric:<name>` for a name that is a fixed column's. */
const metricColumn = (name: string) =>
  (EXPORT_COLUMNS as readonly string[]).includes(name) ? `metric:${name}` : name;

/** A value in JSON: non-finite numbers as proto3's JSON mapping writes them ("NaN", "Infinity"); null when missing. */
const jsonNumber = (value: number | undefined): JsonNumber | null =>
  value === undefined ? null : encodeNonFinite(value);

/** A value in CSV: the shortest text that reads back as the same double (NaN, Infinity as in JSON); empty when missing. */
function csvNumber(value: number | undefined): string {
  return value === undefined ? '' : String(jsonNumber(value));
}

function row(jobId: string, epoch: EpochRecord) {
  const columns = columnValues(epoch.metrics);
  return {
    job_id: jobId,
    epoch: epoch.epoch,
    loss: columns.loss,
    accuracy: columns.accuracy,
    learning_rate: columns.learningRate,
    timestamp: epoch.timestamp ? timestampDate(epoch.timestamp).toISOString() : undefined,
    metrics: epoch.metrics,
  };
}

export async function exportEpochs(
  context: ClientContext,
  jobId: string,
  options: { format?: string },
): Promise<number> {
  const format = options.format ?? 'csv';
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format must be ${EXPORT_FORMATS.join(' or ')}, got "${format}"`);
  }
  const { client } = context.connection;
  const { out } = context;
  const job = await getJob(context, jobId);
  const epochs = everyItem(
    (pageToken) => client.listEpochs({ jobId, pageSize: 1000, pageToken }, callOptions(context)),
    (page) => page.epochs,
  );
  let count = 0;
  if (format === 'json') {
    out.raw('[');
    for await (const epoch of epochs) {
      const r = row(jobId, epoch);
      const metrics = Object.fromEntries(Object.entries(r.metrics).map(([k, v]) => [k, jsonNumber(v)]));
      out.raw(
        `${count++ ? ',' : ''}\n${JSON.stringify({
          job_id: r.job_id,
          epoch: r.epoch,
          loss: jsonNumber(r.loss),
          accuracy: jsonNumber(r.accuracy),
          learning_rate: jsonNumber(r.learning_rate),
          timestamp: r.timestamp ?? null,
          extra_metrics: metrics,
        })}`,
      );
    }
    out.raw(count ? '\n]\n' : ']\n');
  } else {
    const rows = [];
    for await (const epoch of epochs) rows.push(row(jobId, epoch));
    count = rows.length;
    const names = new JobMetrics(job)
      .order(rows.flatMap((r) => Object.keys(r.metrics)))
      .filter((name) => !SAME_AS_COLUMN.has(name));
    out.data(csvLine([...EXPORT_COLUMNS, ...names.map(metricColumn)]));
    for (const r of rows) {
      out.data(
        csvLine([
          r.job_id,
          String(r.epoch),
          csvNumber(r.loss),
          csvNumber(r.accuracy),
          csvNumber(r.learning_rate),
          r.timestamp ?? '',
          ...names.map((name) => csvNumber(r.metrics[name])),
        ]),
      );
    }
  }
  out.message(`exported ${count} epoch${count === 1 ? '' : 's'} of job ${jobId} as ${format}`);
  return 0;
}
