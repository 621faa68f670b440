// What every command's action gets: the parsed options, the outputs, a signal that Ctrl-C aborts, and
import { listAll } from '@training-callbacks/client';
// (for client commands) the connection.
import type { CliConnection } from './connection.ts';
import type { Output } from './output.ts';

/** The context of one command run. */
export interface CommandContext {
  readonly out: Output;
  /** Aborted by SIGINT/SIGTERM: calls are cancelled, a watch ends. */
  readonly signal: AbortSignal;
}

/** The context of a command that talks to the sidecar. */
export interface ClientContext extends CommandContext {
  readonly connection: CliConnection;
}

/** Per-call options: the --timeout deadline and the abort signal. */
export function callOptions(context: ClientContext): { deadline: number; signal: AbortSignal } {
  return { deadline: context.connection.timeoutMs, signal: context.signal };
}

/** Every item of a list RPC, page by page: `call(pageToken)` asks for one page. */
export function everyItem<Res extends { nextPageToken: string }, T>(
  call: (pageToken: string) => Promise<Res>,
  items: (page: Res) => readonly T[],
): AsyncGenerator<T> {
  return listAll((request: { pageToken?: string }) => call(request.pageToken ?? ''), {}, items);
}
