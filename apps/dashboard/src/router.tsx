// A small history router: / (the job list), /jobs/<id> (a job), /compare?job=…&job=… (2–10 jobs).
// The sidecar answers every path without a file extension with index.html, so each of these URLs
// can be reloaded and shared.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'list'; query: URLSearchParams }
  | { page: 'job'; jobId: string }
  | { page: 'compare'; jobIds: string[] }
  | { page: 'unknown'; path: string };

export function parseRoute(location: { pathname: string; search: string }): Route {
  const query = new URLSearchParams(location.search);
  if (location.pathname === '/' || location.pathname === '') return { page: 'list', query };
  const job = /^\/jobs\/([^/]+)$/.exec(location.pathname);
  if (job) {
    try {
      return { page: 'job', jobId: decodeURIComponent(job[1]!) };
    } catch {
      return { page: 'unknown', path: location.pathname };
    }
  }
  if (location.pathname === '/compare') return { page: 'compare', jobIds: query.getAll('job') };
  return { page: 'unknown', path: location.pathname };
}

export const jobHref = (jobId: string) => `/jobs/${encodeURIComponent(jobId)}`;
export const compareHref = (jobIds: readonly string[]) =>
  `/compare?${jobIds.map((id) => `job=${encodeURIComponent(id)}`).join('&')}`;

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => {
  for (const listener of listeners) listener();
});

/** Goes to `href` inside the app (no reload); `replace` keeps the history entry (filters). */
export function navigate(href: string, replace = false): void {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  for (const listener of listeners) listener();
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location));
    listeners.add(update);
    return () => void listeners.delete(update);
  }, []);
  return route;
}

/** An in-app link: a real <a href> (open in a new tab works), navigated without a reload. */
export function Link(props: { href: string; children: ComponentChildren; class?: string; testId?: string }) {
  return (
    <a
      href={props.href}
      class={props.class}
      data-testid={props.testId}
      onClick={(event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}
