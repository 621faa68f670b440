// README examples, read from the README files themselves at test time, so that a test can only pass
// while the documented code (and the output it documents) is true.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const WORKSPACE = path.resolve(import.meta.dirname, '..', '..', '..');

export interface FencedBlock {
  /** The info string after the opening fence, e.g. "ts". */
  readonly lang: string;
  readonly code: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The Markdown heading the block sits under. */
  readonly heading: string;
}

/** Every fenced code block of a Markdown file (path relative to the workspace). */
export function fencedBlocks(file: string): FencedBlock[] {
  const lines = readFileSync(path.join(WORKSPACE, file), 'utf8').split('\n');
  const blocks: FencedBlock[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^#{1,6} /.test(line)) heading = line.replace(/^#+ /, '');
    const open = /^```(\S*)\s*$/.exec(line);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    blocks.push({ lang: open[1]!, code: `${body.join('\n')}\n`, line: start + 1, heading });
  }
  return blocks;
}

/** The one block of `lang` under `heading` (fails loudly when the README was reorganised). */
export function fencedBlock(file: string, lang: string, heading: string | RegExp, index = 0): FencedBlock {
  const matches = fencedBlocks(file).filter(
    (b) => b.lang === lang && (typeof heading === 'string' ? b.heading === heading : heading.test(b.heading)),
  );
  const block = matches[index];
  if (!block) throw new Error(`${file}: no \`\`\`${lang} block #${index} under the heading ${heading}`);
  return block;
}

/** The block right after `block` (e.g. the output a README shows for an example). */
export function nextBlock(file: string, block: FencedBlock): FencedBlock | undefined {
  const all = fencedBlocks(file);
  return all[all.findIndex((b) => b.line === block.line) + 1];
}

let examples = 0;

/**
 * Runs a TypeScript example as a module on the workspace's Node (type stripping, source condition):
 * written to a hidden `.mts` file in `cwd` — the calling package's directory, so that the example's
 * `@training-callbacks/*` imports resolve to that package's dependencies — and removed after the run.
 * A file, not `--eval`: worker threads inherit the process's `execArgv`, and one started by an example
 * (the MLflow mirror's sync thread) cannot start with `--input-type`. `prelude` declares what the
 * example leaves to the reader (e.g. `trainStep`); it is prepended, the example is unchanged.
 */
export async function runTypeScript(
  code: string,
  options: { cwd: string; prelude?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = path.join(options.cwd, `.readme-example-${process.pid}-${examples++}.mts`);
  await writeFile(file, `${options.prelude ?? ''}\n${code}`);
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--conditions=@training-callbacks/source', file], {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
      child.on('error', reject);
      child.on('close', (exitCode) => {
        clearTimeout(timer);
        resolve({ code: exitCode, stdout, stderr });
      });
    });
  } finally {
    await rm(file, { force: true });
  }
}

/**
 * Turns a README's result comments into checks: `// expr → value` checks `expr`, and `// → value`
 * checks the statement just above it. `…` in a value stands for "more fields" (a partial match).
 * Returns the rewritten code and how many checks it holds.
 */
export function withResultChecks(code: string): { code: string; checks: number } {
  const lines = code.split('\n');
  const out: string[] = [];
  let checks = 0;
  for (let i = 0; i < lines.length; i++) {
    const comment = /^\s*\/\/\s*(.*?)\s*→\s*(.*)$/.exec(lines[i]!);
    if (!comment) {
      out.push(lines[i]!);
      continue;
    }
    let value = comment[2]!;
    // A value continues on the following comment lines that do not start a check of their own.
    while (i + 1 < lines.length && /^\s*\/\/\s/.test(lines[i + 1]!) && !/→/.test(lines[i + 1]!))
      value += ` ${lines[++i]!.replace(/^\s*\/\/\s*/, '')}`;
    value = value.replace(/,?\s*\w+:\s*…/g, '').replace(/…/g, '');
    let subject = comment[1]!;
    if (subject === '') {
      // The statement right above: from its first line (after a blank line or a check) to its `;`.
      const statement: string[] = [];
      while (out.length > 0 && out.at(-1)!.trim() !== '' && !out.at(-1)!.startsWith('__check('))
        statement.unshift(out.pop()!);
      subject = statement.join('\n').replace(/;\s*$/, '');
    }
    out.push(`__check(${JSON.stringify(subject.slice(0, 60))}, (${subject}), (${value}));`);
    checks++;
  }
  return { code: out.join('\n'), checks };
}

/** The prelude of a README with result checks: a partial deep match, printed count at exit. */
export const CHECK_PRELUDE = `
import { inspect, isDeepStrictEqual } from 'node:util';
let __checks = 0;
function __matches(actual: unknown, expected: unknown): boolean {
  if (expected !== null && typeof expected === 'object' && actual !== null && typeof actual === 'object')
    return Object.entries(expected).every(([k, v]) => __matches((actual as Record<string, unknown>)[k], v));
  return isDeepStrictEqual(actual, expected);
}
function __check(what: string, actual: unknown, expected: unknown): void {
  if (!__matches(actual, expected))
    throw new Error(\`README says \${what} → \${inspect(expected)}, but it is \${inspect(actual)}\`);
  __checks++;
}
process.on('exit', () => console.log(\`checks passed: \${__checks}\`));
`;
