// An HTTP proxy (Node `http`) on a free loopback port that forwards to a real server and injects HTTP
// faults by rule: error statuses (with Retry-After) and answers lost after the server acted on the request.
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';

/** One fault rule; the first matching rule with budget left applies. */
export interface HttpFault {
  /** Matched against `METHOD /path?query`; default: every request. */
  match?: RegExp;
  /**
   * - a number: answer this status without forwarding (e.g. 500, 429, 503);
   * - `'drop-after-forward'`: forward to the target, then destroy the client's connection instead of answering
   *   (the request took effect but the client never learns it: the case that creates duplicates).
   */
  action: number | 'drop-after-forward';
  /** Seconds for a `Retry-After` header. */
  retryAfterSeconds?: number;
  /** Body of an injected status (default: the injector's `errorBody`). */
  body?: string;
  /** How many requests it applies to (default unlimited while `untilMs` holds). */
  times?: number;
  /** Applies until this time (ms since epoch); default for ever (or until `times` is used up). */
  untilMs?: number;
}

/** Options of {@link startHttpFaultInjector}. */
export interface HttpFaultInjectorOptions {
  /**
   * Body of an injected status whose rule has no `body`, sent as `application/json` (default
   * `{"message":"injected HTTP <status>"}`); e.g. the target's own error format.
   */
  errorBody?: (status: number) => string;
}

/** A running injector; `close()` or dispose it. */
export interface HttpFaultInjector extends AsyncDisposable {
  /** The target URL with the injector's host and port (path, query and credentials kept). */
  url: string;
  /** Adds a rule; returns a function that removes it. */
  add(fault: HttpFault): () => void;
  /** Shorthand: answer `status` to every (matching) request for `ms`. */
  failFor(ms: number, status: number, opts?: { retryAfterSeconds?: number; match?: RegExp }): void;
  clear(): void;
  /** Requests forwarded to the target, and faults injected, so far (`byRule[i]`: by the i-th rule added). */
  stats(): { forwarded: number; injected: number; byRule: number[] };
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

const defaultErrorBody = (status: number) => JSON.stringify({ message: `injected HTTP ${status}` });

/** An HTTP proxy on a free loopback port in front of `target` (`http://host:port`) that injects HTTP faults. */
export async function startHttpFaultInjector(
  target: string,
  options: HttpFaultInjectorOptions = {},
): Promise<HttpFaultInjector> {
  const t = new URL(target);
  const errorBody = options.errorBody ?? defaultErrorBody;
  const agent = new Agent({ keepAlive: true });
  const rules: Array<HttpFault & { used: number; index: number }> = [];
  let nextIndex = 0;
  const byRule: number[] = [];
  let forwarded = 0;
  let injected = 0;

  const pick = (line: string) => {
    const now = Date.now();
    for (const r of rules) {
      if (r.match && !r.match.test(line)) continue;
      if (r.times !== undefined && r.used >= r.times) continue;
      if (r.untilMs !== undefined && now >= r.untilMs) continue;
      r.used++;
      byRule[r.index] = (byRule[r.index] ?? 0) + 1;
      return r;
    }
    return undefined;
  };

  const forward = (req: IncomingMessage, res: ServerResponse | undefined, onDone?: () => void) => {
    forwarded++;
    const up = request(
      {
        host: t.hostname,
        port: Number(t.port || 80),
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (upRes) => {
        if (!res) {
          upRes.resume();
          upRes.on('end', () => onDone?.());
          return;
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', (e) => {
      if (res && !res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`fault injector: upstream error ${e.message}`);
      } else res?.destroy();
      onDone?.();
    });
    req.pipe(up);
  };

  const server: Server = createServer((req, res) => {
    const rule = pick(`${req.method} ${req.url}`);
    if (!rule) return forward(req, res);
    injected++;
    if (rule.action === 'drop-after-forward') {
      forward(req, undefined, () => res.socket?.destroy());
      return;
    }
    req.resume();
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (rule.retryAfterSeconds !== undefined) headers['retry-after'] = String(rule.retryAfterSeconds);
    res.writeHead(rule.action, headers);
    res.end(rule.body ?? errorBody(rule.action));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  const url = new URL(t);
  url.hostname = '127.0.0.1';
  url.port = String(port);

  const injector: HttpFaultInjector = {
    url: url.href.replace(/\/$/, ''),
    add(fault) {
      const r = { ...fault, used: 0, index: nextIndex++ };
      rules.push(r);
      return () => {
        const i = rules.indexOf(r);
        if (i >= 0) rules.splice(i, 1);
      };
    },
    failFor(ms, status, opts = {}) {
      injector.add({ action: status, untilMs: Date.now() + ms, ...opts });
    },
    clear() {
      rules.length = 0;
    },
    stats: () => ({ forwarded, injected, byRule: [...byRule] }),
    async close() {
      rules.length = 0;
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      agent.destroy();
    },
    [Symbol.asyncDispose]: () => injector.close(),
  };
  return injector;
}
