// Assembles the container image's file tree into a directory, without a container engine:
//   <out>/usr/local/bin/node                                   the Node the workspace pins
//   <out>/app/node_modules/@training-callbacks/sidecar/dist/   the built sidecar (entry: dist/bundle/main.js)
//   <out>/app/node_modules/...                                 its production dependencies only
//   <out>/app/node_modules/@training-callbacks/dashboard/dist/ the built dashboard the sidecar serves at /
// The Dockerfile copies this tree onto its base image and nothing else, so what the tests start from
// the tree (image.spec.ts in apps/sidecar-e2e) is what the image runs.
//
//   node tools/image/assemble-image-tree.ts [--out DIR] [--no-build]
//
// Dependencies are found the way Node resolves them (node_modules directories from the requiring
// package up to the workspace root), starting from the sidecar's `dependencies`; devDependencies are
// never followed. Workspace packages contribute their package.json and their `files` (dist/…);
// third-party packages are copied whole but for their own nested node_modules (resolved separately)
// and, for the native SQLite addon, the sources and other platforms' prebuilt binaries.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SIDECAR = path.join(ROOT, 'apps/sidecar');
/** The web dashboard: static files only. The sidecar finds it by package name (http/static-files.ts). */
const DASHBOARD = path.join(ROOT, 'apps/dashboard');
/** What Nx builds for the tree. */
const BUILT_PROJECTS = ['@training-callbacks/sidecar', '@training-callbacks/dashboard'];

interface PackageJson {
  name: string;
  version: string;
  files?: string[];
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as PackageJson;

/** Node's lookup: `<dir>/node_modules/<name>` from `fromDir` up to the workspace root. */
function resolvePackageDir(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === ROOT || dir === path.dirname(dir)) return undefined;
  }
}

/** A package to copy: where it is in the workspace and where it goes under <out>/app. */
interface Entry {
  source: string;
  destination: string;
  workspace: boolean;
}

/** Every production package the sidecar loads, itself included. */
export function productionClosure(): Entry[] {
  const entries = new Map<string, Entry>();
  const visit = (linkDir: string, destination: string) => {
    const source = realpathSync(linkDir);
    if (entries.has(destination)) return;
    const workspace = !source.includes(`${path.sep}node_modules${path.sep}`);
    entries.set(destination, { source, destination, workspace });
    const pkg = readJson(path.join(source, 'package.json'));
    const optional = Object.keys(pkg.optionalDependencies ?? {});
    for (const name of [...Object.keys(pkg.dependencies ?? {}), ...optional]) {
      if (name.startsWith('@types/')) continue; // type declarations: nothing runs them
      // Workspace packages are symlinks in the root node_modules: resolve from where the link is, so
      // nested copies (node_modules/a/node_modules/b) keep their place.
      const found = resolvePackageDir(name, workspace ? source : linkDir);
      if (!found) {
        if (optional.includes(name)) continue;
        throw new Error(`${pkg.name} depends on ${name}, which is not installed: run npm ci`);
      }
      const relative = path.relative(ROOT, found);
      visit(found, relative.startsWith('node_modules') ? relative : path.join('node_modules', name));
    }
  };
  visit(SIDECAR, path.join('node_modules', readJson(path.join(SIDECAR, 'package.json')).name));
  // Not a dependency of the sidecar (its tests start the sidecar, which would make a cycle): the
  // page's own packages are bundled into dist/, so only its package.json and dist/ are copied.
  entries.set('dashboard', {
    source: DASHBOARD,
    destination: path.join('node_modules', readJson(path.join(DASHBOARD, 'package.json')).name),
    workspace: true,
  });
  return [...entries.values()];
}

/** Paths inside a third-party package that the image does not need. */
function skip(entry: Entry, file: string): boolean {
  const inside = path.relative(entry.source, file);
  if (inside === '') return false;
  const [top] = inside.split(path.sep);
  if (top === 'node_modules') return true; // nested dependencies are entries of their own
  if (path.basename(entry.source) === 'better-sqlite3') {
    if (top === 'deps' || top === 'src') return true; // C sources of the addon
    if (
      top === 'prebuilds' &&
      inside !== 'prebuilds' &&
      path.basename(inside) !== `${process.platform}-${process.arch}.node`
    )
      return true;
    if (inside.startsWith(path.join('build', 'Release', 'obj'))) return true;
  }
  return false;
}

function copyEntry(entry: Entry, app: string): void {
  const target = path.join(app, entry.destination);
  mkdirSync(target, { recursive: true });
  if (!entry.workspace) {
    cpSync(entry.source, target, {
      recursive: true,
      dereference: true,
      filter: (file) => !skip(entry, file),
    });
    return;
  }
  const pkg = readJson(path.join(entry.source, 'package.json'));
  cpSync(path.join(entry.source, 'package.json'), path.join(target, 'package.json'));
  for (const item of pkg.files ?? []) {
    const from = path.join(entry.source, item);
    if (!existsSync(from)) throw new Error(`${pkg.name}: "${item}" is missing; build first (npm run build)`);
    cpSync(from, path.join(target, item), {
      recursive: true,
      // Compiled tests and their declarations do not ship.
      filter: (file) => !/\.spec\.(js|d\.ts)(\.map)?$/.test(file),
    });
  }
}

/** The pinned Node binary (the `node` package of the root devDependencies). */
function pinnedNode(): { binary: string; version: string } {
  const wanted = readJson(path.join(ROOT, 'package.json')) as PackageJson & {
    devDependencies: Record<string, string>;
  };
  const binary = realpathSync(path.join(ROOT, 'node_modules/.bin/node'));
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  if (version !== `v${wanted.devDependencies.node}`) {
    throw new Error(
      `node_modules/.bin/node is ${version}, the workspace pins ${wanted.devDependencies.node}`,
    );
  }
  return { binary, version };
}

function sizeOf(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else {
        bytes += s.size;
        files++;
      }
    }
  };
  walk(dir);
  return { bytes, files };
}

export function assembleImageTree(out: string, options: { build?: boolean } = {}): void {
  if (options.build !== false) {
    execFileSync(
      process.execPath,
      [
        path.join(ROOT, 'node_modules/nx/dist/bin/nx.js'),
        'run-many',
        '-t',
        'build',
        '-p',
        ...BUILT_PROJECTS,
        '--output-style=static',
      ],
      { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NX_DAEMON: 'false' } },
    );
  }
  const node = pinnedNode();
  rmSync(out, { recursive: true, force: true });
  const bin = path.join(out, 'usr/local/bin');
  mkdirSync(bin, { recursive: true });
  cpSync(node.binary, path.join(bin, 'node'));
  const app = path.join(out, 'app');
  for (const entry of productionClosure()) copyEntry(entry, app);
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, 'no-build': { type: 'boolean' } },
  });
  const out = path.resolve(values.out ?? path.join(ROOT, 'build/image-tree'));
  assembleImageTree(out, { build: !values['no-build'] });
  const { bytes, files } = sizeOf(out);
  console.log(
    `image tree at ${out}: ${files} files, ${(bytes / 2 ** 20).toFixed(1)} MiB (Node ${pinnedNode().version})`,
  );
}
