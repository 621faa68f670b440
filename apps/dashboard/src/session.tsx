// What every page shares: the metric catalogs (fetched once) and whether the sidecar asked for a
// token. Pages report failed calls here; an UNAUTHENTICATED one opens the token form.
import { type Job, type TaskCatalog, TaskType } from '@training-callbacks/proto';
import { useEffect, useState } from 'preact/hooks';
import { api, needsToken } from './api.ts';
import { formatDuration, jobDuration } from './format.ts';

let catalogs: Promise<Map<TaskType, TaskCatalog>> | undefined;

/** Every task's catalog, by task type (GetMetricCatalog with no task: all of them). */
export function loadCatalogs(): Promise<Map<TaskType, TaskCatalog>> {
  catalogs ??= api.getMetricCatalog({ taskType: TaskType.UNSPECIFIED }).then(
    (response) => new Map(response.catalogs.map((c) => [c.taskType, c])),
    (error: unknown) => {
      catalogs = undefined;
      throw error;
    },
  );
  return catalogs;
}

export function useCatalogs(): Map<TaskType, TaskCatalog> | undefined {
  const [value, setValue] = useState<Map<TaskType, TaskCatalog>>();
  useEffect(() => {
    let live = true;
    loadCatalogs().then(
      (c) => live && setValue(c),
      (error: unknown) => reportFailure(error),
    );
    return () => {
      live = false;
    };
  }, []);
  return value;
}

const tokenListeners = new Set<(needed: boolean) => void>();

/** A call failed: ask for a token when that is why. */
export function reportFailure(error: unknown): void {
  if (needsToken(error)) for (const listener of tokenListeners) listener(true);
}

export function onTokenNeeded(listener: (needed: boolean) => void): () => void {
  tokenListeners.add(listener);
  return () => void tokenListeners.delete(listener);
}

const tickers = new Set<(now: number) => void>();
let ticking: ReturnType<typeof setInterval> | undefined;

/** The time, re-rendered every second by one timer shared by every user (durations of running jobs). */
export function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    tickers.add(setNow);
    ticking ??= setInterval(() => {
      const t = Date.now();
      for (const tick of tickers) tick(t);
    }, 1000);
    return () => {
      tickers.delete(setNow);
      if (tickers.size === 0) {
        clearInterval(ticking);
        ticking = undefined;
      }
    };
  }, []);
  return now;
}

/** How long a job ran, or has been running (ticking). */
export function Duration(props: { job: Job }) {
  const ended = props.job.endedAt !== undefined;
  return ended ? formatDuration(jobDuration(props.job, 0)) : <Ticking job={props.job} />;
}

function Ticking(props: { job: Job }) {
  return formatDuration(jobDuration(props.job, useNow()));
}
