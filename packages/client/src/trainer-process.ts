// Who the trainer is, for BeginTraining's `trainer` (proto TrainerProcess): with (pid, start time,
// boot id) the sidecar can watch this very process when it sees it (same host, or a pod with
// shareProcessNamespace) and give its verdict soon after the process dies; the session id lets
// this client's later reports and heartbeats revive a job declared lost. Read once per client.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { BOOT_ID_MAX_LENGTH, HOSTNAME_MAX_LENGTH, type TrainerProcess } from '@training-callbacks/proto';

type TrainerProcessInit = Pick<
  TrainerProcess,
  'pid' | 'startTimeTicks' | 'hostname' | 'bootId' | 'sessionId'
>;

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback; // not Linux, or /proc hidden: no process evidence
  }
}

/**
 * Field 22 (`starttime`, clock ticks since boot) of a /proc/<pid>/stat line. The command name
 * (field 2) is in parentheses and may hold spaces and ")", so fields are counted from after the last
 * ")": starttime is the 20th after it. 0 when the line cannot be read.
 */
export function startTimeTicks(stat: string): bigint {
  const rest = stat
    .slice(stat.lastIndexOf(')') + 1)
    .trim()
    .split(/\s+/);
  const field = rest[19];
  return field !== undefined && /^\d+$/.test(field) ? BigInt(field) : 0n;
}

/** This process, as BeginTraining's `trainer`, with the client's `sessionId`. */
export function thisTrainerProcess(sessionId: string): TrainerProcessInit {
  return {
    pid: process.pid,
    startTimeTicks: startTimeTicks(readOr('/proc/self/stat', '')),
    hostname: hostname().slice(0, HOSTNAME_MAX_LENGTH),
    bootId: readOr('/proc/sys/kernel/random/boot_id', '').trim().slice(0, BOOT_ID_MAX_LENGTH),
    sessionId,
  };
}
