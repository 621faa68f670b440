// What a benchmark samples from /proc (Linux): a process's CPU time and resident memory, the host's steal.
import { readFile } from 'node:fs/promises';

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** The process's CPU time so far (user + system), in seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
}

/** The process's resident set size, in MiB. */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** MiB (what /proc reports, 2^20 bytes) in MB (10^6 bytes, what the targets are written in). */
export function mibToMb(mib: number): number {
  return (mib * 2 ** 20) / 1e6;
}

/** A size in MiB as "X MiB (Y MB)". */
export function mibAndMb(mib: number): string {
  return `${mib.toFixed(1)} MiB (${mibToMb(mib).toFixed(1)} MB)`;
}

/**
 * CPU time the hypervisor gave other guests while this machine's CPUs wanted to run ("steal", all
 * CPUs), in seconds so far: on a shared host it tells a noisy measurement from a slow program.
 */
export async function stealSeconds(): Promise<number> {
  const stat = await readFile('/proc/stat', 'utf8');
  const fields = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/);
  return Number(fields[8] ?? 0) / CLOCK_TICKS; // cpu user nice system idle iowait irq softirq steal
}
