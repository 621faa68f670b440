import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type DatabaseHealthState, startDatabaseHealth } from './database-health.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'database-health-'));
const dbPath = path.join(dir, 'db.sqlite');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const full = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
const until = async (condition: () => boolean, timeoutMs = 5000) => {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

// The probe here stands in for Store.probeWrite (the e2e tests use the real one on a full tmpfs and
// a locked file); what is tested is the state machine around it.
describe('database health', () => {
  it('turns not writable when a reported failure is confirmed by the probe, and writable again by itself', async () => {
    let failing = false;
    const changes: DatabaseHealthState[] = [];
    const health = startDatabaseHealth({
      dbPath,
      probeWrite: async () => {
        if (failing) throw full();
      },
      intervalMs: 60_000,
      failingIntervalMs: 10,
    });
    health.onChange((state) => changes.push(state));
    await health.check();
    expect(health.state.writable).toBe(true);

    failing = true;
    health.reportFailure('disk_full', full());
    await until(() => !health.state.writable);
    expect(health.state).toMatchObject({ writable: false, failure: 'disk_full' });
    expect(!health.state.writable && health.state.reason).toMatch(/SQLITE_FULL/);

    failing = false; // space freed: the next probe (10 ms later) sees it without any call
    await until(() => health.state.writable);
    expect(changes.map((s) => s.writable)).toEqual([false, true]);
    health.stop();
  });

  it('keeps a damaged database not writable, whatever the probe says', async () => {
    const health = startDatabaseHealth({ dbPath, probeWrite: async () => {}, failingIntervalMs: 5 });
    await health.check();
    health.reportFailure('damaged', Object.assign(new Error('malformed'), { code: 'SQLITE_CORRUPT' }));
    expect(health.state).toMatchObject({ writable: false, failure: 'damaged' });
    await new Promise((r) => setTimeout(r, 50));
    expect((await health.check()).writable).toBe(false);
    health.stop();
  });

  it('counts a file system with less than minFreeBytes free as not writable, naming its directory', async () => {
    let probed = 0;
    const health = startDatabaseHealth({
      dbPath,
      probeWrite: async () => {
        probed++;
      },
      minFreeBytes: Number.MAX_SAFE_INTEGER,
    });
    const state = await health.check();
    expect(state).toMatchObject({ writable: false, failure: 'low_space' });
    expect(!state.writable && state.reason).toContain(dir);
    expect(probed).toBe(0);
    health.stop();
  });
});
