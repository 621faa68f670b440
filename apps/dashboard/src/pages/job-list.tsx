// The job list, live: ListJobs once the WatchJobs stream is open, then every event replaces its job
// (the newer by updated_at wins, so a late answer never rolls a row back). Filters and the id search
// live in the URL (?status=failed&task=object_detection&q=yolo), so a filtered view can be shared.
import { DISPLAY_STATUSES, type Job, TaskType } from '@training-callbacks/proto';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, listAll, mlflowUiUrl } from '../api.ts';
import { type FollowState, follow, stateText } from '../follow.ts';
import {
  dateOf,
  definitionsOf,
  formatTime,
  formatValue,
  labelOf,
  matchesStatusFilter,
  mlflowRunUrl,
  parseTask,
  primaryValueOf,
  statusOf,
  syncOf,
  TASKS,
  taskLabel,
  taskName,
} from '../format.ts';
import { compareHref, jobHref, Link, navigate } from '../router.tsx';
import { Duration, reportFailure, useCatalogs } from '../session.tsx';

const updatedMs = (job: Job) => dateOf(job.updatedAt)?.getTime() ?? 0;

function newer(current: Job | undefined, incoming: Job): boolean {
  return !current || updatedMs(incoming) >= updatedMs(current);
}

export function JobList(props: { query: URLSearchParams }) {
  const statusFilter = DISPLAY_STATUSES.includes(props.query.get('status') ?? '')
    ? props.query.get('status')!
    : '';
  const task = parseTask(props.query.get('task'));
  const search = props.query.get('q') ?? '';
  const [jobs, setJobs] = useState<ReadonlyMap<string, Job>>(new Map());
  const [state, setState] = useState<FollowState>('connecting');
  const [error, setError] = useState<string>();
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const catalogs = useCatalogs();

  useEffect(() => {
    const controller = new AbortController();
    const merge = (incoming: readonly Job[]) =>
      setJobs((current) => {
        const next = new Map(current);
        for (const job of incoming) if (newer(next.get(job.jobId), job)) next.set(job.jobId, job);
        return next;
      });
    void follow({
      signal: controller.signal,
      open: (from, signal) => api.watchJobs(from, { signal }),
      onState: setState,
      onOpen: () => {
        listAll(async (pageToken) => {
          const page = await api.listJobs({ pageSize: 1000, pageToken }, { signal: controller.signal });
          return { nextPageToken: page.nextPageToken, items: page.jobs };
        }).then(merge, (e: unknown) => {
          if (controller.signal.aborted) return;
          reportFailure(e);
          setError(String((e as Error).message));
        });
      },
      onEvent: (event) => {
        // One message carries the jobs that changed in the sidecar's window (~100 ms).
        const changed = event.events.flatMap((e) => (e.job ? [e.job] : []));
        if (changed.length > 0) merge(changed);
      },
    });
    return () => controller.abort();
  }, []);

  const rows = useMemo(() => {
    const needle = search.trim().toLowerCase();
    return [...jobs.values()]
      .filter((job) => matchesStatusFilter(job, statusFilter))
      .filter((job) => task === TaskType.UNSPECIFIED || job.taskType === task)
      .filter((job) => needle === '' || job.jobId.toLowerCase().includes(needle))
      .sort((a, b) => (dateOf(b.createdAt)?.getTime() ?? 0) - (dateOf(a.createdAt)?.getTime() ?? 0));
  }, [jobs, statusFilter, task, search]);

  const setQuery = (key: string, value: string) => {
    const query = new URLSearchParams(props.query);
    if (value) query.set(key, value);
    else query.delete(key);
    const text = query.toString();
    navigate(text ? `/?${text}` : '/', true);
  };
  const toggle = (jobId: string) =>
    setSelected((current) => {
      const next = new Set(current);
      if (!next.delete(jobId)) next.add(jobId);
      return next;
    });
  const mlflowUi = mlflowUiUrl();

  return (
    <section>
      <header class="page-header">
        <h1>Jobs</h1>
        <span class="live" data-testid="watch-state">
          {stateText(state)}
        </span>
      </header>
      <div class="filters">
        <label>
          Status{' '}
          <select
            data-testid="filter-status"
            value={statusFilter}
            onChange={(e) => setQuery('status', (e.target as HTMLSelectElement).value)}
          >
            <option value="">any</option>
            {DISPLAY_STATUSES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Task{' '}
          <select
            data-testid="filter-task"
            value={taskName(task) ?? ''}
            onChange={(e) => setQuery('task', (e.target as HTMLSelectElement).value)}
          >
            <option value="">any</option>
            {TASKS.map((t) => (
              <option value={taskName(t)}>{taskLabel(t)}</option>
            ))}
          </select>
        </label>
        <label>
          Job id{' '}
          <input
            type="search"
            data-testid="search"
            placeholder="search by id"
            value={search}
            onInput={(e) => setQuery('q', (e.target as HTMLInputElement).value)}
          />
        </label>
        <button
          type="button"
          data-testid="compare"
          disabled={selected.size < 2 || selected.size > 10}
          title="Select 2 to 10 jobs"
          onClick={() => navigate(compareHref([...selected]))}
        >
          Compare {selected.size > 0 ? `(${selected.size})` : ''}
        </button>
      </div>
      {error && <p class="error">{error}</p>}
      <table class="jobs" data-testid="job-table">
        <thead>
          <tr>
            <th />
            <th>Job</th>
            <th>Status</th>
            <th>Task</th>
            <th>Model</th>
            <th>Framework</th>
            <th>Started</th>
            <th>Duration</th>
            <th>Best epoch</th>
            <th>Primary</th>
            <th>MLflow</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((job) => {
            const definitions = definitionsOf(job, catalogs?.get(job.taskType));
            const primary = definitions.get(definitions.primary);
            const { label, kind, reason } = statusOf(job);
            const sync = syncOf(job);
            const run = mlflowRunUrl(job, mlflowUi);
            return (
              <tr key={job.jobId} data-testid="job-row" data-job-id={job.jobId}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`select ${job.jobId} to compare`}
                    checked={selected.has(job.jobId)}
                    onChange={() => toggle(job.jobId)}
                  />
                </td>
                <td>
                  <Link href={jobHref(job.jobId)}>{job.jobId}</Link>
                </td>
                <td>
                  <span class={`status status-${kind}`} data-testid="job-status" title={reason}>
                    {label}
                  </span>
                  {reason && (
                    <div class="reason" data-testid="job-reason">
                      {reason}
                    </div>
                  )}
                </td>
                <td>{taskLabel(job.taskType)}</td>
                <td>{job.modelName || '—'}</td>
                <td>{job.framework || '—'}</td>
                <td>{formatTime(dateOf(job.createdAt))}</td>
                <td>
                  <Duration job={job} />
                </td>
                <td data-testid="job-best-epoch">{job.bestEpoch ?? '—'}</td>
                <td data-testid="job-primary" title={primary?.description}>
                  <span class="metric-label">{labelOf(definitions.primary, definitions)}</span>{' '}
                  {formatValue(primaryValueOf(job), primary)}
                </td>
                <td>
                  {run ? (
                    <a href={run} target="_blank" rel="noreferrer">
                      run
                    </a>
                  ) : job.mlflowRunId ? (
                    <span title={job.mlflowRunId}>run {job.mlflowRunId.slice(0, 8)}</span>
                  ) : null}{' '}
                  <span class={sync.attention ? 'sync attention' : 'sync'} data-testid="job-sync">
                    {sync.text}
                  </span>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {rows.length === 0 && <p class="empty">{jobs.size === 0 ? 'No jobs yet.' : 'No job matches.'}</p>}
    </section>
  );
}
