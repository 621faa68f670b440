import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startTimeTicks, thisTrainerProcess } from './trainer-process.ts';

describe('the trainer process', () => {
  it('reads starttime after the last ")" of /proc/<pid>/stat, whatever the command name holds', () => {
    const tail = 'S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654321 20 21';
    expect(startTimeTicks(`42 (node) ${tail}`)).toBe(987654321n);
    expect(startTimeTicks(`42 (a ) b (c)) ${tail}`)).toBe(987654321n);
    expect(startTimeTicks('')).toBe(0n);
  });

  it('is this process: pid, start time and boot id as /proc says', () => {
    const me = thisTrainerProcess('session-1');
    expect(me.pid).toBe(process.pid);
    expect(me.sessionId).toBe('session-1');
    expect(me.startTimeTicks).toBe(startTimeTicks(readFileSync(`/proc/${process.pid}/stat`, 'utf8')));
    expect(me.startTimeTicks).toBeGreaterThan(0n);
    expect(me.bootId).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  });
});
