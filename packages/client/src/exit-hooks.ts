// Every way a Node process ends, for the jobs still running in it: each gets its outcome and message
// within a bounded flush deadline, and the process ends as it would have without us.
//
// - SIGTERM / SIGINT: CANCELLED ("terminated by SIGTERM", the Python client's words). Only when the signal would end the process (no
//   other listener): the queue is flushed (at most exitFlushTimeoutMs), then our listener is removed
//   and the signal raised again, so the default action ends the process (killed by the signal, as
//   before). A second signal while flushing ends it at once.
// - The event loop drains without onTrainEnd ('beforeExit'): COMPLETED when process.exitCode is 0,
//   else FAILED "the process exited with code N before onTrainEnd"; the queue is flushed first.
// - process.exit() and crashes ('exit', synchronous): an uncaught exception or unhandled rejection
//   (seen by 'uncaughtExceptionMonitor', which changes nothing in Node's handling: the error is still
//   printed and the exit code is still 1) is FAILED with "uncaught exception: Error: …"; otherwise the
//   exit code decides as above. No event loop runs any more, so the queued epoch reports and then
//   EndTraining go out through a child process (sync-call.ts) the exit waits for (at most
//   exitFlushTimeoutMs); what it cannot send (artifacts, batch points) is counted in the losses.
import type { OutcomeName } from './names.ts';

/** A job that an exit path can end (a TrainingCallbacks). */
export interface ExitParticipant {
  /** How long its exit path may take, in milliseconds. */
  readonly exitFlushTimeoutMs: number;
  /** Ends the job with the event loop still running (flushes first). */
  endOnExit(outcome: OutcomeName, message: string | undefined, timeoutMs: number): Promise<void>;
  /** Ends the job synchronously (the process is exiting). */
  endSyncOnExit(outcome: OutcomeName, message: string | undefined, timeoutMs: number): void;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
type HandledSignal = (typeof SIGNALS)[number];

const participants = new Set<ExitParticipant>();
/** Participants the drained event loop already tried to end (so 'beforeExit' cannot loop). */
const triedBeforeExit = new WeakSet<ExitParticipant>();
let installed = false;
/** The uncaught exception or unhandled rejection that is ending the process. */
let fatal: string | undefined;
/** The last SIGTERM/SIGINT received. */
let signalled: HandledSignal | undefined;
let signalEnding = false;

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** The outcome when the process exits with `code` (no signal handled by us). */
function exitOutcome(code: number): [OutcomeName, string | undefined] {
  if (fatal !== undefined) return ['failed', fatal];
  if (signalled !== undefined)
    return ['cancelled', `the process exited after ${signalled} without onTrainEnd`];
  if (code === 0) return ['completed', undefined];
  return ['failed', `the process exited with code ${code} before onTrainEnd`];
}

function onUncaught(error: unknown, origin: string): void {
  // With an 'uncaughtException' listener the application handles the error and the process goes on.
  if (process.listenerCount('uncaughtException') > 0) return;
  fatal = `${origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception'}: ${describeError(error)}`;
}

function onExit(code: number): void {
  const [outcome, message] = exitOutcome(code);
  for (const participant of [...participants]) {
    try {
      participant.endSyncOnExit(outcome, message, participant.exitFlushTimeoutMs);
    } catch {
      // The exit must go on.
    }
  }
}

function onBeforeExit(code: number): void {
  const due = [...participants].filter((p) => !triedBeforeExit.has(p));
  if (due.length === 0) return;
  const [outcome, message] = exitOutcome(code);
  for (const p of due) triedBeforeExit.add(p);
  // The pending work keeps the event loop alive; 'beforeExit' comes again once it is done.
  void Promise.all(
    due.map((p) => p.endOnExit(outcome, message, p.exitFlushTimeoutMs).catch(() => undefined)),
  );
}

function raiseAgain(signal: HandledSignal): void {
  uninstall();
  // Nobody else listens: the default action ends the process, killed by the signal as without us.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function onSignal(signal: HandledSignal): void {
  if (signalEnding) {
    raiseAgain(signal); // a second signal: stop waiting for the flush
    return;
  }
  signalled = signal;
  // Another listener decides what the signal does; if the process then exits, 'exit' ends the job.
  if (process.listenerCount(signal) > 1) return;
  signalEnding = true;
  const message = `terminated by ${signal}`;
  void Promise.all(
    [...participants].map((p) =>
      p.endOnExit('cancelled', message, p.exitFlushTimeoutMs).catch(() => undefined),
    ),
  ).finally(() => raiseAgain(signal));
}

const signalHandlers: Record<HandledSignal, () => void> = {
  SIGTERM: () => onSignal('SIGTERM'),
  SIGINT: () => onSignal('SIGINT'),
};

function install(): void {
  if (installed) return;
  installed = true;
  process.on('uncaughtExceptionMonitor', onUncaught);
  process.on('beforeExit', onBeforeExit);
  process.on('exit', onExit);
  for (const signal of SIGNALS) process.on(signal, signalHandlers[signal]);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.removeListener('uncaughtExceptionMonitor', onUncaught);
  process.removeListener('beforeExit', onBeforeExit);
  process.removeListener('exit', onExit);
  for (const signal of SIGNALS) process.removeListener(signal, signalHandlers[signal]);
}

/** Ends `participant`'s job on the process's exit paths until {@link unregisterForExit}. */
export function registerForExit(participant: ExitParticipant): void {
  participants.add(participant);
  install();
}

/** The job ended (or was closed): its exit paths are removed, and our listeners with the last one. */
export function unregisterForExit(participant: ExitParticipant): void {
  participants.delete(participant);
  if (participants.size === 0 && !signalEnding) uninstall();
}
