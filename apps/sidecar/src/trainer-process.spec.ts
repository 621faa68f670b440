import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isProcessAlive, parseProcStat, readBootId, readProcessStat } from './trainer-process.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fake /proc holding one stat line for `pid`. */
function fakeProc(pid: number, line: string): string {
  const root = mkdtempSync(join(tmpdir(), 'fake-proc-'));
  dirs.push(root);
  mkdirSync(join(root, String(pid)));
  writeFileSync(join(root, String(pid), 'stat'), line);
  return root;
}

/** A stat line: pid, (comm), state, then fields 4…21 as 0, starttime (22), then a few more. */
const statLine = (pid: number, comm: string, state: string, start: string) =>
  `${pid} (${comm}) ${state} ${Array(18).fill('0').join(' ')} ${start} 0 0 0\n`;

describe('process evidence', () => {
  it('reads field 22 after the last ")", whatever the command name holds', () => {
    expect(parseProcStat(statLine(7, 'python3', 'S', '123456'))).toEqual({
      state: 'S',
      startTimeTicks: '123456',
    });
    expect(parseProcStat(statLine(7, 'a) b (c) R 9', 'R', '42'))).toEqual({
      state: 'R',
      startTimeTicks: '42',
    });
    expect(parseProcStat('garbage')).toBeUndefined();
  });

  it('names a process by pid and start time: another start time (pid reuse) or a zombie is not it', () => {
    const root = fakeProc(4242, statLine(4242, 'train', 'S', '1000'));
    expect(isProcessAlive(4242, '1000', root)).toBe(true);
    expect(isProcessAlive(4242, '999', root)).toBe(false);
    expect(isProcessAlive(4243, '1000', root)).toBe(false);
    const zombie = fakeProc(4242, statLine(4242, 'train', 'Z', '1000'));
    expect(isProcessAlive(4242, '1000', zombie)).toBe(false);
  });

  it.runIf(process.platform === 'linux')(
    'sees a real process until it exits, and this kernel has a boot id',
    async () => {
      expect(readBootId()).toMatch(/^[0-9a-f-]{36}$/);
      const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
      const stat = readProcessStat(child.pid!)!;
      expect(stat.startTimeTicks).toMatch(/^\d+$/);
      expect(isProcessAlive(child.pid!, stat.startTimeTicks)).toBe(true);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      expect(isProcessAlive(child.pid!, stat.startTimeTicks)).toBe(false);
    },
  );
});
