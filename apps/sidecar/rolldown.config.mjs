// The sidecar as `npm start` and the image run it: the built sidecar (dist/main.js) and the modules it
// loads bundled into dist/bundle/main.js (plus the chunks of its lazy imports). Node then compiles and
// keeps a few modules instead of ~850, without the code of theirs that the sidecar never runs: ~8 MiB
// less idle RSS (tools/bench/pg-bench.ts). Comments are dropped (V8 keeps every module's source text);
// the packages' licences ship with their node_modules copies in the image.
// The worker threads' modules are entries of their own, written next to main.js, where their packages
// look for them (`./integrity-check-thread.js`, `./wal-checkpoint-thread.js`, `./sync-thread.js` beside
// import.meta.url). Left to node_modules: the native SQLite addon (Node loads its binary from there) and
// pg's optional native driver.
import path from 'node:path';
import { defineConfig } from 'rolldown';

const sibling = (file) => new URL(`../../packages/${file}`, import.meta.url).pathname;

/**
 * A bundled CommonJS package that reads its own files by `__dirname` (@grpc/reflection's and grpc-js's
 * .proto files, pino's transport workers) reads them from its installed copy instead: `__dirname` becomes
 * that package's directory in the node_modules above the bundle, found when the code runs (the image
 * ships every production package whole). Without this, ESM output has no `__dirname` at all.
 */
const PACKAGE_DIR = `import { existsSync as __tcExists } from 'node:fs';
import { createRequire as __tcCreateRequire } from 'node:module';
import { join as __tcJoin } from 'node:path';
const __tcPackageDir = (name, sub) => {
  const modules = __tcCreateRequire(import.meta.url).resolve.paths(name).find((dir) => __tcExists(__tcJoin(dir, name, 'package.json')));
  if (modules === undefined) throw new Error(\`\${name} is not installed in a node_modules above \${import.meta.url}: the sidecar's bundle reads that package's own files from there\`);
  return __tcJoin(modules, name, sub);
};`;

const packageDirname = {
  name: 'package-dirname',
  transform: {
    filter: { id: /[\\/]node_modules[\\/]/, code: /__dirname/ },
    handler(code, id) {
      const inside = id.slice(id.lastIndexOf(`${path.sep}node_modules${path.sep}`) + 14).split(path.sep);
      const nameLength = inside[0].startsWith('@') ? 2 : 1;
      const name = inside.slice(0, nameLength).join('/');
      const sub = inside.slice(nameLength, -1).join('/');
      const replaced = code.replace(
        /(?<![\w$.'"`])__dirname(?![\w$'"`])/g,
        `__tcPackageDir(${JSON.stringify(name)}, ${JSON.stringify(sub)})`,
      );
      return { code: replaced, map: null };
    },
  },
  renderChunk(code) {
    return code.includes('__tcPackageDir(') ? { code: `${PACKAGE_DIR}\n${code}`, map: null } : null;
  },
};

export default defineConfig({
  input: {
    main: 'dist/main.js',
    'integrity-check-thread': sibling('store/dist/integrity-check-thread.js'),
    'wal-checkpoint-thread': sibling('store/dist/wal-checkpoint-thread.js'),
    'sync-thread': sibling('mlflow-bridge/dist/sync-thread.js'),
  },
  platform: 'node',
  external: ['better-sqlite3', 'pg-native'],
  plugins: [packageDirname],
  output: { dir: 'dist/bundle', format: 'esm', cleanDir: true, comments: false },
});
