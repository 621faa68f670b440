import { describe, expect, it } from 'vitest';
import { Output, renderTable } from './output.ts';

function capture(isTTY: boolean, env: NodeJS.ProcessEnv) {
  let stdout = '';
  let stderr = '';
  const out = new Output({
    stdout: { isTTY, write: (text: string) => (stdout += text) },
    stderr: { isTTY, write: (text: string) => (stderr += text) },
    env,
  });
  return { out, text: () => ({ stdout, stderr }) };
}

describe('Output', () => {
  it('styles only on a terminal, and never with NO_COLOR set', () => {
    const tty = capture(true, {});
    tty.out.data(tty.out.style('green', 'completed'));
    tty.out.error('boom');
    expect(tty.text().stdout).toBe('\u001b[32mcompleted\u001b[39m\n');
    expect(tty.text().stderr).toBe('\u001b[31mtraining-callbacks:\u001b[39m boom\n');

    for (const { isTTY, env } of [
      { isTTY: true, env: { NO_COLOR: '1' } },
      { isTTY: false, env: {} },
    ]) {
      const plain = capture(isTTY, env);
      plain.out.data(plain.out.style('green', 'completed'));
      plain.out.error('boom');
      expect(plain.text()).toEqual({ stdout: 'completed\n', stderr: 'training-callbacks: boom\n' });
    }
    // NO_COLOR="" does not count as set (no-color.org).
    const empty = capture(true, { NO_COLOR: '' });
    expect(empty.out.style('red', 'x')).not.toBe('x');
  });

  it('data goes to stdout, messages to stderr', () => {
    const { out, text } = capture(false, {});
    out.data('row');
    out.message('progress');
    expect(text()).toEqual({ stdout: 'row\n', stderr: 'progress\n' });
  });
});

describe('renderTable', () => {
  it('pads columns to their widest cell, styles not counted, the last column unpadded', () => {
    expect(
      renderTable(
        ['A', 'BB', 'C'],
        [
          ['xxx', '\u001b[1my\u001b[22m', 'z'],
          ['', '', ''],
        ],
      ),
    ).toEqual(['A    BB  C', 'xxx  \u001b[1my\u001b[22m   z', '']);
  });
});
