// One job, live. The WatchJob stream is opened first; once its first message arrives the page loads
// the job, its epochs, artifacts and batch series, and from then on applies each event: an epoch
// event (with the job as it is then) updates the tables and epoch charts at once, a batch block
// marks its metrics for a fresh GetMetricSeries (at most every REFRESH_MS), an artifact joins the list.
import {
  type Artifact,
  type EpochRecord,
  type GetMetricSeriesResponse,
  isLost,
  type Job,
  JobStatus,
  type MetricDefinition,
} from '@training-callbacks/proto';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, artifactUrl, authorizationHeader, describeError, listAll, mlflowUiUrl } from '../api.ts';
import { Chart, type ChartSeries, SERIES_COLORS as COLORS } from '../chart.tsx';
import { type FollowState, follow, stateText } from '../follow.ts';
import {
  dateOf,
  definitionsOf,
  directionOf,
  formatBytes,
  formatName,
  formatTime,
  formatValue,
  type JobDefinitions,
  labelOf,
  mlflowRunUrl,
  statusOf,
  syncOf,
  taskLabel,
} from '../format.ts';
import { Link } from '../router.tsx';
import { Duration, reportFailure, useCatalogs } from '../session.tsx';

/** Buckets asked for per batch chart: about one per pixel of a wide chart. */
const SERIES_POINTS = 2000;
/** Live batch charts ask for a fresh series at most this often. */
const REFRESH_MS = 250;

interface Series {
  x: number[];
  last: (number | null)[];
  min: (number | null)[];
  max: (number | null)[];
  fullResolution: boolean;
  totalPoints: bigint;
  /** The zoomed step range, when zoomed. */
  zoom?: { min: bigint; max: bigint };
}

const finiteOrNull = (v: number) => (Number.isFinite(v) ? v : null);

function toSeries(response: GetMetricSeriesResponse, zoom?: Series['zoom']): Series {
  const b = response.buckets;
  return {
    x: b.map((bucket) => Number(bucket.lastStep)),
    last: b.map((bucket) => finiteOrNull(bucket.last)),
    min: b.map((bucket) => finiteOrNull(bucket.min)),
    max: b.map((bucket) => finiteOrNull(bucket.max)),
    fullResolution: response.fullResolution,
    totalPoints: response.totalPoints,
    ...(zoom && { zoom }),
  };
}

const updatedMs = (job: Job) => dateOf(job.updatedAt)?.getTime() ?? 0;

/** The best value of `name` over `epochs` by its direction. */
function bestOf(epochs: readonly EpochRecord[], name: string, definition: MetricDefinition | undefined) {
  let best: { epoch: number; value: number } | undefined;
  for (const e of epochs) {
    const value = e.metrics[name];
    if (value === undefined || !Number.isFinite(value)) continue;
    const better =
      definition?.higherIsBetter === false
        ? value < (best?.value ?? Infinity)
        : value > (best?.value ?? -Infinity);
    if (!best || better) best = { epoch: e.epoch, value };
  }
  return best;
}

export function JobPage(props: { jobId: string }) {
  const { jobId } = props;
  const [job, setJob] = useState<Job>();
  const [epochs, setEpochs] = useState<ReadonlyMap<number, EpochRecord>>(new Map());
  const [artifacts, setArtifacts] = useState<ReadonlyMap<string, Artifact>>(new Map());
  const [batchNames, setBatchNames] = useState<readonly string[]>([]);
  const [series, setSeries] = useState<ReadonlyMap<string, Series>>(new Map());
  const [state, setState] = useState<FollowState>('connecting');
  const [error, setError] = useState<string>();
  const catalogs = useCatalogs();
  const dirty = useRef(new Set<string>());
  const zooms = useRef(new Map<string, Series['zoom']>());
  const drawn = useRef(new Set<string>());
  const knownNames = useRef(new Set<string>());

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    setJob(undefined);
    setEpochs(new Map());
    setArtifacts(new Map());
    setBatchNames([]);
    setSeries(new Map());
    dirty.current.clear();
    zooms.current.clear();
    drawn.current.clear();
    knownNames.current.clear();
    const failed = (e: unknown) => {
      if (signal.aborted) return;
      reportFailure(e);
      setError(describeError(e));
    };
    const mergeJob = (incoming: Job) =>
      setJob((current) => (!current || updatedMs(incoming) >= updatedMs(current) ? incoming : current));
    const mergeEpochs = (incoming: readonly EpochRecord[]) =>
      setEpochs((current) => {
        const next = new Map(current);
        for (const e of incoming) next.set(e.epoch, e);
        return next;
      });
    const mergeArtifacts = (incoming: readonly Artifact[]) =>
      setArtifacts((current) => {
        const next = new Map(current);
        for (const a of incoming) next.set(a.artifactPath, a);
        return next;
      });
    const addBatchNames = (names: readonly string[]) => {
      setBatchNames((current) => {
        const missing = names.filter((n) => !current.includes(n));
        return missing.length ? [...current, ...missing] : current;
      });
      for (const name of names) {
        dirty.current.add(name);
        knownNames.current.add(name);
      }
    };

    let inFlight = false;
    const refresh = async () => {
      if (inFlight || dirty.current.size === 0) return;
      inFlight = true;
      const names = [...dirty.current];
      dirty.current.clear();
      try {
        const results = await Promise.all(
          names
            .filter((name) => !zooms.current.get(name))
            .map(async (name) => {
              const response = await api.getMetricSeries(
                { jobId, name, maxPoints: SERIES_POINTS },
                { signal },
              );
              return [name, toSeries(response)] as const;
            }),
        );
        setSeries((current) => {
          const next = new Map(current);
          for (const [name, s] of results) if (!zooms.current.get(name)) next.set(name, s);
          return next;
        });
      } catch (e) {
        failed(e);
      } finally {
        inFlight = false;
      }
    };
    const timer = setInterval(() => void refresh(), REFRESH_MS);

    const load = async () => {
      try {
        const [got, epochList, artifactList] = await Promise.all([
          api.getJob({ jobId }, { signal }),
          listAll(async (pageToken) => {
            const page = await api.listEpochs({ jobId, pageSize: 1000, pageToken }, { signal });
            return { nextPageToken: page.nextPageToken, items: page.epochs };
          }),
          listAll(async (pageToken) => {
            const page = await api.listArtifacts({ jobId, pageSize: 1000, pageToken }, { signal });
            return { nextPageToken: page.nextPageToken, items: page.artifacts };
          }),
        ]);
        if (got.job) mergeJob(got.job);
        mergeEpochs(epochList);
        mergeArtifacts(artifactList);
      } catch (e) {
        failed(e);
      }
    };
    // The batch charts do not wait for the stream: the names of the job's batch metrics (the first
    // stored block's; later ones arrive as events) and their series are read at once. A series is
    // read whole each time, so a block stored before the stream opened is in the next read, which
    // the next batch event, or the job's end, asks for.
    api.listBatchMetrics({ jobId, pageSize: 1 }, { signal }).then((firstBatch) => {
      addBatchNames(firstBatch.blocks.flatMap((b) => b.names));
      void refresh();
    }, failed);

    void follow({
      signal,
      open: (from, s) => api.watchJob({ jobId, ...from }, { signal: s }),
      onState: setState,
      onOpen: () => void load(),
      onEvent: (response) => {
        // One message carries the job's changes of the sidecar's window (~100 ms), in seq order.
        for (const event of response.events) {
          const { value } = event.event;
          switch (event.event.case) {
            case 'job':
              // Ended: the last batch block may have been stored before the stream opened.
              if (event.event.value.endedAt) for (const name of knownNames.current) dirty.current.add(name);
              mergeJob(event.event.value);
              break;
            case 'epoch':
              mergeEpochs([event.event.value]);
              if (event.epochJob) mergeJob(event.epochJob);
              break;
            case 'batch':
              addBatchNames(event.event.value.names);
              break;
            case 'artifact':
              mergeArtifacts([event.event.value]);
              break;
            default:
              void value;
          }
        }
      },
    });
    return () => {
      controller.abort();
      clearInterval(timer);
    };
  }, [jobId]);

  const zoom = (name: string, min: number, max: number) => {
    const range = { min: BigInt(Math.max(0, Math.floor(min))), max: BigInt(Math.ceil(max)) };
    zooms.current.set(name, range);
    api
      .getMetricSeries({ jobId, name, maxPoints: SERIES_POINTS, minStep: range.min, maxStep: range.max })
      .then(
        (response) => setSeries((current) => new Map(current).set(name, toSeries(response, range))),
        (e: unknown) => setError(describeError(e)),
      );
  };
  const unzoom = (name: string) => {
    zooms.current.delete(name);
    dirty.current.add(name);
  };
  const onBatchDrawn = (name: string, points: number) => {
    if (points === 0 || drawn.current.has(name)) return;
    drawn.current.add(name);
    if (drawn.current.size === batchNames.length) performance.mark('tc:batch-charts-drawn');
  };

  const definitions = useMemo(
    () => (job ? definitionsOf(job, catalogs?.get(job.taskType)) : undefined),
    [job, catalogs],
  );
  const epochList = useMemo(() => [...epochs.values()].sort((a, b) => a.epoch - b.epoch), [epochs]);
  const metricNames = useMemo(() => {
    const names = new Set<string>();
    for (const e of epochList) for (const name of Object.keys(e.metrics)) names.add(name);
    return names;
  }, [epochList]);

  if (!job || !definitions) {
    return (
      <section>
        <p>
          <Link href="/">← jobs</Link>
        </p>
        <h1>{jobId}</h1>
        {error ? <p class="error">{error}</p> : <p>Loading…</p>}
      </section>
    );
  }

  const standardNames = definitions.standard.map((d) => d.name).filter((n) => metricNames.has(n));
  const customNames = [...metricNames].filter((n) => !definitions.isStandard(n)).sort();
  const primary = definitions.get(definitions.primary);
  const { label: statusLabel, kind, reason } = statusOf(job);
  const sync = syncOf(job);
  const run = mlflowRunUrl(job, mlflowUiUrl());

  return (
    <section>
      <p>
        <Link href="/">← jobs</Link>
      </p>
      <header class="page-header">
        <h1 data-testid="job-id">{job.jobId}</h1>
        <span class={`status status-${kind}`} data-testid="job-status">
          {statusLabel}
        </span>
        <span class="live" data-testid="watch-state">
          {stateText(state)}
        </span>
      </header>
      {error && <p class="error">{error}</p>}
      <dl class="facts">
        <dt>Task</dt>
        <dd>{taskLabel(job.taskType)}</dd>
        <dt>Model</dt>
        <dd>{job.modelName || '—'}</dd>
        <dt>Framework</dt>
        <dd>{job.framework || '—'}</dd>
        <dt>Started</dt>
        <dd>{formatTime(dateOf(job.createdAt))}</dd>
        <dt>Duration</dt>
        <dd>
          <Duration job={job} />
        </dd>
        {job.lastSeenAt && (
          <>
            <dt>Last seen</dt>
            <dd data-testid="last-seen">
              {formatTime(dateOf(job.lastSeenAt))}
              {job.trainer?.hostname
                ? ` · ${job.trainer.hostname}${job.trainer.pid ? ` pid ${job.trainer.pid}` : ''}`
                : ''}
            </dd>
          </>
        )}
        <dt>Epochs</dt>
        <dd data-testid="epoch-count">{job.epochsReported}</dd>
        <dt>MLflow</dt>
        <dd>
          {run ? (
            <a href={run} target="_blank" rel="noreferrer" data-testid="mlflow-link">
              run {job.mlflowRunId}
            </a>
          ) : (
            job.mlflowRunId || '—'
          )}{' '}
          <span class={sync.attention ? 'sync attention' : 'sync'}>{sync.text}</span>
        </dd>
      </dl>

      {reason && (
        <div class="failure" data-testid="failure-reason">
          <h2>
            {isLost(job)
              ? 'Why the sidecar declared it lost'
              : job.status === JobStatus.FAILED
                ? 'Why it failed'
                : 'Why it is not clean'}
          </h2>
          <pre>{reason}</pre>
        </div>
      )}

      <div class="primary" data-testid="primary">
        <div class="primary-label" title={primary?.description}>
          {labelOf(definitions.primary, definitions)} <span class="direction">{directionOf(primary)}</span>
        </div>
        <div class="primary-value" data-testid="primary-value">
          {formatValue(job.bestValue, primary)}
        </div>
        <div class="primary-best" data-testid="best-epoch">
          {job.bestEpoch === undefined ? 'no best epoch yet' : `best at epoch ${job.bestEpoch}`}
          {job.finalPrimaryValue !== undefined && ` · final ${formatValue(job.finalPrimaryValue, primary)}`}
        </div>
      </div>

      <h2>Standard metrics</h2>
      <MetricTable
        names={standardNames}
        epochs={epochList}
        definitions={definitions}
        testId="standard-metrics"
      />
      <div class="charts">
        {standardNames.map((name) => (
          <EpochChart
            key={name}
            name={name}
            epochs={epochList}
            definitions={definitions}
            markerX={name === definitions.primary ? job.bestEpoch : undefined}
          />
        ))}
      </div>

      {batchNames.length > 0 && (
        <>
          <h2>Batch metrics</h2>
          <p class="hint">
            Drag across a chart to zoom (re-read at full resolution); double-click to zoom out.
          </p>
          <div class="charts">
            {batchNames.map((name) => (
              <BatchChart
                key={name}
                name={name}
                series={series.get(name)}
                definitions={definitions}
                onZoom={(min, max) => zoom(name, min, max)}
                onReset={() => unzoom(name)}
                onDrawn={(points) => onBatchDrawn(name, points)}
              />
            ))}
          </div>
        </>
      )}

      <CustomMetrics names={customNames} epochs={epochList} definitions={definitions} />

      <h2>Artifacts</h2>
      <ArtifactTable jobId={job.jobId} artifacts={[...artifacts.values()]} />

      <h2>Params and config</h2>
      <table class="params" data-testid="params">
        <tbody>
          {Object.entries(job.params)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([key, value]) => (
              <tr key={key}>
                <th>{key}</th>
                <td>{value}</td>
              </tr>
            ))}
        </tbody>
      </table>
      <div class="configs">
        <div>
          <h3>Model config</h3>
          <pre data-testid="model-config">{JSON.stringify(job.modelConfig ?? {}, null, 2)}</pre>
        </div>
        <div>
          <h3>Training config</h3>
          <pre data-testid="training-config">{JSON.stringify(job.trainingConfig ?? {}, null, 2)}</pre>
        </div>
      </div>
    </section>
  );
}

function BatchChart(props: {
  name: string;
  series: Series | undefined;
  definitions: JobDefinitions;
  onZoom: (min: number, max: number) => void;
  onReset: () => void;
  onDrawn: (points: number) => void;
}) {
  const { name, series: s, definitions } = props;
  const definition = definitions.get(name);
  const label = labelOf(name, definitions);
  const lines = useMemo<ChartSeries[]>(
    () =>
      s
        ? [
            { label, values: s.last, color: COLORS[0]! },
            { label: 'max', values: s.max, color: 'rgba(28,126,214,0.4)', faint: true },
            { label: 'min', values: s.min, color: 'rgba(28,126,214,0.4)', faint: true },
          ]
        : [],
    [s, label],
  );
  const what = s
    ? `${s.totalPoints} points${s.fullResolution ? ', full resolution' : `, ${s.x.length} buckets (min/max/last)`}${s.zoom ? ', zoomed' : ''}`
    : 'loading';
  return (
    <div
      data-testid="batch-chart"
      data-name={name}
      data-points={s?.x.length ?? 0}
      data-total={s?.totalPoints ?? 0}
    >
      <Chart
        title={`${label} per step — ${what}`}
        xLabel="step"
        x={s?.x ?? EMPTY}
        series={lines}
        band={{ upper: 1, lower: 2 }}
        format={(v) => formatValue(v, definition)}
        onZoom={props.onZoom}
        onReset={props.onReset}
        onDrawn={() => props.onDrawn(s?.x.length ?? 0)}
      />
    </div>
  );
}

const EMPTY: number[] = [];

function MetricTable(props: {
  names: readonly string[];
  epochs: readonly EpochRecord[];
  definitions: JobDefinitions;
  testId: string;
}) {
  const latest = props.epochs[props.epochs.length - 1];
  return (
    <table class="metrics" data-testid={props.testId}>
      <thead>
        <tr>
          <th>Metric</th>
          <th>Latest{latest ? ` (epoch ${latest.epoch})` : ''}</th>
          <th>Best</th>
          <th>Format</th>
          <th>Direction</th>
        </tr>
      </thead>
      <tbody>
        {props.names.map((name) => {
          const definition = props.definitions.get(name);
          const best = bestOf(props.epochs, name, definition);
          return (
            <tr key={name} data-testid="metric-row" data-name={name}>
              <th title={definition?.description}>
                <span class="metric-label">{labelOf(name, props.definitions)}</span>{' '}
                <code class="metric-name">{name}</code>
              </th>
              <td class="metric-latest">{formatValue(latest?.metrics[name], definition)}</td>
              <td>{best ? `${formatValue(best.value, definition)} (epoch ${best.epoch})` : '—'}</td>
              <td>{formatName(definition)}</td>
              <td>{directionOf(definition)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function EpochChart(props: {
  name: string;
  epochs: readonly EpochRecord[];
  definitions: JobDefinitions;
  markerX?: number | undefined;
}) {
  const definition = props.definitions.get(props.name);
  const x = useMemo(() => props.epochs.map((e) => e.epoch), [props.epochs]);
  const values = useMemo(
    () => props.epochs.map((e) => finiteOrNull(e.metrics[props.name] ?? Number.NaN)),
    [props.epochs, props.name],
  );
  const series = useMemo(
    () => [{ label: labelOf(props.name, props.definitions), values, color: COLORS[0]! }],
    [values, props.name, props.definitions],
  );
  const label = labelOf(props.name, props.definitions);
  return (
    <div
      data-testid="epoch-chart"
      data-name={props.name}
      data-points={x.length}
      data-best-epoch={props.markerX}
    >
      <Chart
        title={`${label}${props.markerX !== undefined ? ` — ◆ best epoch ${props.markerX}` : ''}`}
        xLabel="epoch"
        x={x}
        series={series}
        markerX={props.markerX}
        format={(v) => formatValue(v, definition)}
      />
    </div>
  );
}

function CustomMetrics(props: {
  names: readonly string[];
  epochs: readonly EpochRecord[];
  definitions: JobDefinitions;
}) {
  const [open, setOpen] = useState(false);
  if (props.names.length === 0) return null;
  return (
    <details
      class="custom"
      data-testid="custom-metrics"
      onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}
    >
      <summary>Custom metrics ({props.names.length})</summary>
      {open && (
        <>
          <MetricTable
            names={props.names}
            epochs={props.epochs}
            definitions={props.definitions}
            testId="custom-table"
          />
          <div class="charts">
            {props.names.map((name) => (
              <EpochChart key={name} name={name} epochs={props.epochs} definitions={props.definitions} />
            ))}
          </div>
        </>
      )}
    </details>
  );
}

function ArtifactTable(props: { jobId: string; artifacts: readonly Artifact[] }) {
  if (props.artifacts.length === 0) return <p class="empty">No artifacts.</p>;
  // With a token, a plain link cannot authenticate: fetch with the header, then save the blob.
  const download = async (event: MouseEvent, href: string, name: string) => {
    const authorization = authorizationHeader();
    if (!authorization) return;
    event.preventDefault();
    const response = await fetch(href, { headers: { authorization } });
    if (!response.ok) {
      alert(`download failed: ${response.status} ${await response.text()}`);
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  return (
    <table class="artifacts" data-testid="artifacts">
      <thead>
        <tr>
          <th>Path</th>
          <th>Size</th>
          <th>SHA-256</th>
          <th>Logged</th>
        </tr>
      </thead>
      <tbody>
        {props.artifacts.map((a) => {
          const href = artifactUrl(props.jobId, a.artifactPath);
          const name = a.artifactPath.split('/').pop() ?? 'artifact';
          return (
            <tr key={a.artifactPath}>
              <td>
                <a
                  href={href}
                  download={name}
                  data-testid="artifact-link"
                  onClick={(e) => void download(e, href, name)}
                >
                  {a.artifactPath}
                </a>
              </td>
              <td>{formatBytes(a.sizeBytes)}</td>
              <td>
                <code title={a.sha256}>{a.sha256.slice(0, 12)}</code>
              </td>
              <td>{formatTime(dateOf(a.loggedAt))}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
