// Process evidence: what Linux tells about a trainer process the sidecar can see. A process is named
// by its pid and its start time (/proc/<pid>/stat field 22, clock ticks since boot), because a pid
// alone is reused; and by the kernel's boot id, because start times restart at every boot. The
// same boot id does not mean the same pid namespace (containers on one host share the kernel), so a
// trainer is watched only when /proc/<pid>/stat shows that very start time.
import { readFileSync } from 'node:fs';

/** The kernel's boot id (/proc/sys/kernel/random/boot_id); '' where there is none (not Linux). */
export function readBootId(path = '/proc/sys/kernel/random/boot_id'): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** A process as /proc/<pid>/stat shows it. */
export interface ProcessStat {
  /** Field 22, `starttime`, as a decimal string (it may exceed 2^53 in theory). */
  startTimeTicks: string;
  /** Field 3: 'Z' (zombie) and 'X' (dead) are exited processes not yet reaped. */
  state: string;
}

/**
 * Parses a /proc/<pid>/stat line. The command name (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so the fields are counted from after its last ")".
 */
export function parseProcStat(line: string): ProcessStat | undefined {
  const close = line.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = line
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  // rest[0] is field 3 (state); field 22 is rest[19].
  const state = rest[0];
  const startTimeTicks = rest[19];
  if (!state || !startTimeTicks || !/^\d+$/.test(startTimeTicks)) return undefined;
  return { state, startTimeTicks };
}

/** /proc/<pid>/stat of a visible process; undefined when there is none (exited, or not visible). */
export function readProcessStat(pid: number, procRoot = '/proc'): ProcessStat | undefined {
  try {
    return parseProcStat(readFileSync(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The process named by (pid, start time) is running here: visible, the same start, not a zombie. */
export function isProcessAlive(pid: number, startTimeTicks: string, procRoot = '/proc'): boolean {
  const stat = readProcessStat(pid, procRoot);
  return (
    stat !== undefined && stat.startTimeTicks === startTimeTicks && stat.state !== 'Z' && stat.state !== 'X'
  );
}
