import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseTokenFile, TokenFileError, watchTokenFile } from './auth.ts';

const W = 'write-token-0123456789';
const R = 'read-token-0123456789';

describe('token file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tc-auth-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('parses roles, bare tokens, comments and blank lines', () => {
    const entries = parseTokenFile(`# ops\n\nwrite ${W}\n  read\t${R}  \n${W}bare\r\n`, 'f');
    expect(entries.map((e) => e.role)).toEqual(['write', 'read', 'write']);
  });

  it('refuses malformed lines, short tokens and an empty file, naming the line', () => {
    expect(() => parseTokenFile(`admin ${W}\n`, 'f')).toThrow(/f line 1: expected "write <token>"/);
    expect(() => parseTokenFile(`read ${R} extra\n`, 'f')).toThrow(/f line 1/);
    expect(() => parseTokenFile('# c\nread short\n', 'f')).toThrow(/f line 2: the token is 5 characters/);
    expect(() => parseTokenFile('# nothing\n', 'f')).toThrow(TokenFileError);
  });

  it('decides: none, malformed, unknown, read-only on a write, and accepted', async () => {
    const file = path.join(dir, 'tokens');
    await writeFile(file, `write ${W}\nread ${R}\n`);
    const auth = watchTokenFile(file, () => {});
    try {
      expect(auth.authorize(undefined, 'read', 'GetJob')).toMatchObject({
        ok: false,
        reason: 'unauthenticated',
      });
      expect(auth.authorize(W, 'read', 'GetJob')).toMatchObject({ ok: false, reason: 'unauthenticated' });
      expect(auth.authorize(`Bearer ${W}x`, 'read', 'GetJob')).toMatchObject({
        ok: false,
        reason: 'unauthenticated',
      });
      expect(auth.authorize(`Bearer ${W.slice(0, -1)}`, 'read', 'GetJob')).toMatchObject({ ok: false });
      expect(auth.authorize(`Bearer ${R}`, 'write', 'EndEpoch')).toMatchObject({
        ok: false,
        reason: 'permission-denied',
      });
      expect(auth.authorize(`Bearer ${R}`, 'read', 'GetJob')).toEqual({ ok: true, role: 'read' });
      expect(auth.authorize(`bearer ${W}`, 'write', 'EndEpoch')).toEqual({ ok: true, role: 'write' });
    } finally {
      auth.close();
    }
  });

  it('a token listed as read and as write has the write role', async () => {
    const file = path.join(dir, 'tokens');
    await writeFile(file, `read ${W}\nwrite ${W}\n`);
    const auth = watchTokenFile(file, () => {});
    expect(auth.authorize(`Bearer ${W}`, 'write', 'EndEpoch')).toEqual({ ok: true, role: 'write' });
    auth.close();
  });

  it('refuses a missing file with its path', () => {
    expect(() => watchTokenFile(path.join(dir, 'missing'), () => {})).toThrow(
      /cannot read --auth-token-file .*missing/,
    );
  });
});
