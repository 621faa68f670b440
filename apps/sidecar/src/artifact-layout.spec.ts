import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  artifactClash,
  INCOMING_DIR,
  JOB_DIR_MAX_LENGTH,
  jobDirName,
  storedPathOf,
} from './artifact-layout.ts';
import { artifactPathProblem } from './validation.ts';

describe('jobDirName', () => {
  it('keeps ordinary ids readable', () => {
    expect(jobDirName('resnet-42')).toBe('resnet-42');
    expect(jobDirName('yolo11n_v2.3')).toBe('yolo11n_v2.3');
  });

  it('never gives "", ".", ".." or a name starting with "." (the staging directory\'s)', () => {
    expect(jobDirName('.')).toBe('%2E');
    expect(jobDirName('..')).toBe('%2E.');
    expect(jobDirName('.incoming')).toBe('%2Eincoming');
    expect(jobDirName('...')).toBe('%2E..');
    expect(INCOMING_DIR.startsWith('.')).toBe(true);
  });

  it('escapes separators and everything outside [A-Za-z0-9_.-] per UTF-8 byte', () => {
    expect(jobDirName('a/b')).toBe('a%2Fb');
    expect(jobDirName('../..')).toBe('%2E.%2F..');
    expect(jobDirName('a\\b')).toBe('a%5Cb');
    expect(jobDirName('50%')).toBe('50%25');
    expect(jobDirName('é')).toBe('%C3%A9');
    expect(jobDirName('😀')).toBe('%F0%9F%98%80');
  });

  it('is injective on ids that escape alike-looking', () => {
    const ids = ['a%2Fb', 'a/b', '%2E', '.', 'a~b', 'a b', 'a+b', 'A', 'a'];
    expect(new Set(ids.map(jobDirName)).size).toBe(ids.length);
  });

  it('bounds the length: long ids are cut and end with a hash of the whole id', () => {
    const long = '😀'.repeat(128); // 128 code points: the longest job id, 1536 characters escaped
    const name = jobDirName(long);
    expect(name.length).toBe(JOB_DIR_MAX_LENGTH);
    expect(name).toMatch(/~[0-9a-f]{32}$/);
    const other = jobDirName(`${'😀'.repeat(127)}😁`);
    expect(other.length).toBe(JOB_DIR_MAX_LENGTH);
    expect(other).not.toBe(name); // same escaped prefix, different hash
    expect(jobDirName('x'.repeat(JOB_DIR_MAX_LENGTH))).toBe('x'.repeat(JOB_DIR_MAX_LENGTH));
    expect(jobDirName('x'.repeat(JOB_DIR_MAX_LENGTH + 1))).toMatch(/^x{87}~[0-9a-f]{32}$/);
  });
});

describe('storedPathOf', () => {
  const store = '/srv/store';

  it('places an artifact under its job directory, segment by segment', () => {
    expect(storedPathOf(store, 'job-1', 'checkpoints/best.pt')).toBe('/srv/store/job-1/checkpoints/best.pt');
    expect(storedPathOf(store, '..', 'training-callbacks.sqlite')).toBe(
      '/srv/store/%2E./training-callbacks.sqlite',
    );
    expect(storedPathOf(store, '.', 'x')).toBe('/srv/store/%2E/x');
  });

  it('every job id and every checked artifact path stays strictly inside the store', () => {
    const ids = [
      '.',
      '..',
      '../..',
      '/',
      '/etc',
      'a/../..',
      '%2E%2E',
      '~',
      ' ',
      '😀'.repeat(128),
      'x'.repeat(128),
    ];
    const paths = ['a', 'a/b', '...', '.hidden', 'a..b/c', '~/x', '%2E%2E/x', 'é/ü', 'x'.repeat(255)];
    for (const artifactPath of paths) expect(artifactPathProblem(artifactPath)).toBeUndefined();
    for (const id of ids) {
      for (const artifactPath of paths) {
        const stored = storedPathOf(store, id, artifactPath);
        const relative = path.relative(store, stored).split(path.sep);
        expect(relative.length).toBe(1 + artifactPath.split('/').length);
        expect(relative[0]).toBe(jobDirName(id));
        expect(relative.every((s) => s !== '' && s !== '.' && s !== '..')).toBe(true);
      }
    }
  });

  it('throws (a bug, never reached through the checks) for an unchecked path that would leave', () => {
    expect(() => storedPathOf(store, 'job', '../other/x')).toThrow(/resolved outside/);
    expect(() => storedPathOf(store, 'job', '.')).toThrow(/resolved outside/);
  });
});

describe('a randomized sweep (seeded, so a failure repeats)', () => {
  // Characters chosen to hit every rule: dots, separators, escapes, the hash marker, controls,
  // non-ASCII and astral characters.
  const alphabet = [...'aZ09_-.~%/\\ :*?"<>|é€😀\u0000\u0007\u007f\u0085\u200b\ufeff'];
  let seed = 20261201;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const text = (max: number) =>
    Array.from({ length: 1 + random(max) }, () => alphabet[random(alphabet.length)]).join('');

  it('every job id and every accepted artifact path lands strictly inside its job directory', () => {
    const store = '/srv/store';
    const names = new Map<string, string>();
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      const jobId = text(i % 10 === 0 ? 140 : 12);
      const dir = jobDirName(jobId);
      expect(dir === '' || dir === '.' || dir === '..' || dir.startsWith('.'), jobId).toBe(false);
      expect(dir.length).toBeLessThanOrEqual(JOB_DIR_MAX_LENGTH);
      expect(dir).toMatch(/^[A-Za-z0-9_%~.-]+$/);
      const other = names.get(dir);
      expect(other === undefined || other === jobId, `${jobId} and ${other} share ${dir}`).toBe(true);
      names.set(dir, jobId);
      const artifactPath = Array.from({ length: 1 + random(4) }, () => text(8)).join('/');
      if (artifactPathProblem(artifactPath) !== undefined) continue;
      accepted++;
      const stored = storedPathOf(store, jobId, artifactPath);
      expect(path.relative(path.join(store, dir), stored).split(path.sep)).toEqual(artifactPath.split('/'));
    }
    expect(accepted).toBeGreaterThan(500); // the sweep did place paths, not only refuse them
  });
});

describe('artifactPathProblem', () => {
  it('refuses what cannot be placed inside the store', () => {
    expect(artifactPathProblem('')).toMatch(/empty/);
    expect(artifactPathProblem('../x')).toMatch(/"\.\."/);
    expect(artifactPathProblem('a/./b')).toMatch(/"\."/);
    expect(artifactPathProblem('a//b')).toMatch(/empty segments/);
    expect(artifactPathProblem('a/')).toMatch(/empty segments/);
    expect(artifactPathProblem('/abs')).toMatch(/relative/);
    expect(artifactPathProblem('a\\b')).toMatch(/relative/);
    expect(artifactPathProblem('a\u0000b')).toMatch(/control/);
  });

  it('limits a name to 255 bytes of UTF-8 and the path to 512 characters', () => {
    expect(artifactPathProblem('x'.repeat(255))).toBeUndefined();
    expect(artifactPathProblem('x'.repeat(256))).toMatch(
      /256 bytes long in UTF-8; the limit per name .* 255 bytes/,
    );
    expect(artifactPathProblem('é'.repeat(128))).toMatch(/256 bytes/); // 128 characters, 256 bytes
    expect(artifactPathProblem(Array(128).fill('abc').join('/'))).toBeUndefined(); // 511 characters
    expect(artifactPathProblem(Array(129).fill('abc').join('/'))).toMatch(
      /515 characters long; the limit is 512/,
    );
    // Code points, not UTF-16 units: 300 emoji are 600 units but 300 characters (in names of 60).
    expect(artifactPathProblem(Array(5).fill('😀'.repeat(59)).join('/'))).toBeUndefined();
  });
});

describe('artifactClash', () => {
  const stored = ['model.pt', 'checkpoints/best.pt', 'logs/a/b.txt'];

  it('finds a stored file where a directory is needed, and a stored directory where a file would go', () => {
    expect(artifactClash(stored, ['model.pt/x'])).toEqual({ wanted: 'model.pt/x', stored: 'model.pt' });
    expect(artifactClash(stored, ['checkpoints'])).toEqual({
      wanted: 'checkpoints',
      stored: 'checkpoints/best.pt',
    });
    expect(artifactClash(stored, ['logs/a'])).toEqual({ wanted: 'logs/a', stored: 'logs/a/b.txt' });
    expect(artifactClash(stored, ['ok.txt', 'logs/a/b.txt/c'])).toEqual({
      wanted: 'logs/a/b.txt/c',
      stored: 'logs/a/b.txt',
    });
  });

  it('lets the same path replace itself and new paths sit next to stored ones', () => {
    expect(
      artifactClash(stored, ['model.pt', 'checkpoints/last.pt', 'logs/a/c.txt', 'model.pt2']),
    ).toBeUndefined();
    expect(artifactClash([], ['a', 'b/c'])).toBeUndefined();
  });
});
