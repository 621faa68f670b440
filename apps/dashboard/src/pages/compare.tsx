// Compare 2–10 jobs: their primary metric (best value and epoch, formatted by each job's catalog)
// and a chart per metric that every compared job reports, one line per job, over epochs.
import type { EpochRecord, Job } from '@training-callbacks/proto';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, describeError, listAll } from '../api.ts';
import { Chart, SERIES_COLORS as COLORS } from '../chart.tsx';
import { definitionsOf, formatValue, labelOf, primaryValueOf, statusOf, taskLabel } from '../format.ts';
import { jobHref, Link } from '../router.tsx';
import { reportFailure, useCatalogs } from '../session.tsx';

interface Loaded {
  job: Job;
  epochs: EpochRecord[];
}

export function Compare(props: { jobIds: readonly string[] }) {
  const jobIds = useMemo(() => [...new Set(props.jobIds)], [props.jobIds]);
  const [loaded, setLoaded] = useState<Loaded[]>();
  const [error, setError] = useState<string>();
  const catalogs = useCatalogs();

  useEffect(() => {
    if (jobIds.length < 2 || jobIds.length > 10) return;
    const controller = new AbortController();
    const { signal } = controller;
    Promise.all(
      jobIds.map(async (jobId) => {
        const [{ job }, epochs] = await Promise.all([
          api.getJob({ jobId }, { signal }),
          listAll(async (pageToken) => {
            const page = await api.listEpochs({ jobId, pageSize: 1000, pageToken }, { signal });
            return { nextPageToken: page.nextPageToken, items: page.epochs };
          }),
        ]);
        return { job: job!, epochs };
      }),
    ).then(setLoaded, (e: unknown) => {
      if (signal.aborted) return;
      reportFailure(e);
      setError(describeError(e));
    });
    return () => controller.abort();
  }, [jobIds]);

  if (jobIds.length < 2 || jobIds.length > 10) {
    return (
      <section>
        <p>
          <Link href="/">← jobs</Link>
        </p>
        <p class="error">Compare takes 2 to 10 jobs (got {jobIds.length}): select them in the job list.</p>
      </section>
    );
  }
  if (!loaded) return <section>{error ? <p class="error">{error}</p> : <p>Loading…</p>}</section>;

  const withDefinitions = loaded.map((l) => ({
    ...l,
    definitions: definitionsOf(l.job, catalogs?.get(l.job.taskType)),
  }));
  const primaries = new Set(withDefinitions.map((l) => l.definitions.primary));
  // Metrics every job reports, the shared primary first.
  const shared = [...new Set(withDefinitions.flatMap((l) => l.epochs.flatMap((e) => Object.keys(e.metrics))))]
    .filter((name) => withDefinitions.every((l) => l.epochs.some((e) => name in e.metrics)))
    .sort((a, b) => Number(primaries.has(b)) - Number(primaries.has(a)) || a.localeCompare(b));
  const epochsAxis = [...new Set(withDefinitions.flatMap((l) => l.epochs.map((e) => e.epoch)))].sort(
    (a, b) => a - b,
  );
  const first = withDefinitions[0]!;

  return (
    <section>
      <p>
        <Link href="/">← jobs</Link>
      </p>
      <h1>Compare {loaded.length} jobs</h1>
      <table class="jobs" data-testid="compare-table">
        <thead>
          <tr>
            <th>Job</th>
            <th>Task</th>
            <th>Status</th>
            <th>Primary</th>
            <th>Best epoch</th>
          </tr>
        </thead>
        <tbody>
          {withDefinitions.map(({ job, definitions }, i) => (
            <tr key={job.jobId} data-testid="compare-row">
              <td>
                <span class="swatch" style={{ background: COLORS[i] }} />{' '}
                <Link href={jobHref(job.jobId)}>{job.jobId}</Link>
              </td>
              <td>{taskLabel(job.taskType)}</td>
              <td>{statusOf(job).label}</td>
              <td>
                {labelOf(definitions.primary, definitions)}{' '}
                {formatValue(primaryValueOf(job), definitions.get(definitions.primary))}
              </td>
              <td>{job.bestEpoch ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {shared.length === 0 && <p class="empty">These jobs share no epoch metric.</p>}
      <div class="charts">
        {shared.map((name) => (
          <div key={name} data-testid="compare-chart" data-name={name}>
            <Chart
              title={labelOf(name, first.definitions)}
              xLabel="epoch"
              x={epochsAxis}
              series={withDefinitions.map(({ job, epochs }, i) => {
                const byEpoch = new Map(epochs.map((e) => [e.epoch, e.metrics[name]]));
                return {
                  label: job.jobId,
                  color: COLORS[i]!,
                  values: epochsAxis.map((x) => {
                    const v = byEpoch.get(x);
                    return v === undefined || !Number.isFinite(v) ? null : v;
                  }),
                };
              })}
              format={(v) => formatValue(v, first.definitions.get(name))}
            />
          </div>
        ))}
      </div>
    </section>
  );
}
