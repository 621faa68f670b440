// Real small file systems for the tests: a tmpfs of a given size (a full disk in seconds) or a
// read-only one. Mounting needs root (CAP_SYS_ADMIN). Where the test cannot mount it says so loudly
// and skips; in CI, which runs as root, a failed mount fails the suite instead.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type Mounted = { dir: string } | { cannot: string };

/** Mounts a tmpfs (`size` like '24m'; `readOnly` for a read-only one) at a new directory. */
export function mountTmpfs(size: string, readOnly = false): Mounted {
  const dir = mkdtempSync(path.join(tmpdir(), 'tc-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', dir], {
      stdio: 'pipe',
    });
    return { dir };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const why = (error as { stderr?: Buffer }).stderr?.toString().trim() || String(error);
    const cannot = `mount -t tmpfs failed (${why}); run the tests as root (CI does) to test real file systems`;
    const message = `\n!!! SKIPPING tests on a mounted file system: ${cannot}\n`;
    if (process.env.CI === 'true' && process.getuid?.() === 0) throw new Error(message);
    console.warn(message);
    return { cannot };
  }
}

/** Unmounts what {@link mountTmpfs} mounted (lazily: a process may still hold a file there). */
export function unmount(mounted: Mounted): void {
  if (!('dir' in mounted)) return;
  execFileSync('umount', ['-l', mounted.dir]);
  rmSync(mounted.dir, { recursive: true, force: true });
}

/** Writes ballast files until the file system is full, to the last block; returns their paths. */
export function fillUp(dir: string): string[] {
  const files = [path.join(dir, 'ballast'), path.join(dir, 'ballast-tail')];
  // Big writes first, then small ones for the last bytes, so not even a page is left.
  for (const [file, size] of [
    [files[0]!, 64 * 1024],
    [files[1]!, 512],
  ] as const) {
    const fd = openSync(file, 'w');
    const chunk = Buffer.alloc(size, 1);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      closeSync(fd);
    }
  }
  return files;
}
