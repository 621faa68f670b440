// Trainer processes for the verdict specs (verdict-trainer.ts, a raw gRPC client run as its own process,
// so that it can be killed), started and driven through their stdin.
import path from 'node:path';
import { type LoggedProcess, spawnLogged } from './processes.ts';

const TRAINER = path.join(import.meta.dirname, 'verdict-trainer.ts');

/** The trainer's `begun` line: who it is and what the sidecar answered. */
export interface Begun {
  pid: number;
  sessionId: string;
  heartbeatIntervalSeconds: number;
  leaseSeconds: number;
  processWatched: boolean;
}

/** Starts a trainer process on `address` and waits for its `begun` line. */
export async function startTrainer(
  address: string,
  jobId: string,
  extra: string[] = [],
): Promise<{ trainer: LoggedProcess; begun: Begun; send(command: string): void }> {
  const trainer = spawnLogged(
    process.execPath,
    ['--conditions=@training-callbacks/source', TRAINER, address, jobId, ...extra],
    {},
    { input: true },
  );
  const begun = JSON.parse((await trainer.waitFor(/^begun (.*)$/, 60_000))[1]!) as Begun;
  return { trainer, begun, send: (command) => trainer.child.stdin!.write(`${command}\n`) };
}
