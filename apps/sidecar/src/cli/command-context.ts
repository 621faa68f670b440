// What every command's action gets: the parsed options, the outputs, a signal that Ctrl-C aborts, and
// (for client commands) the connection.
import { listAll, RpcError, Status } from '@training-callbacks/client';
import type { Job } from '@training-callbacks/proto';
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

/** The job (GetJob); NOT_FOUND, as the sidecar answers for an unknown id, when the answer holds none. */
export async function getJob(context: ClientContext, jobId: string): Promise<Job> {
  const { job } = await context.connection.client.getJob({ jobId }, callOptions(context));
  if (!job) throw new RpcError(Status.NOT_FOUND, `job "${jobId}" not found`);
  return job;
}
