// The sidecar as `npm start` and the image run it: the built sidecar (dist/main.js) and the modules it
// loads bundled into dist/bundle/main.js (plus the chunks of its lazy imports). Node then compiles and
// keeps a few modules instead of ~850, without the code of theirs that the sidecar never runs: ~10 MiB
// less idle RSS (tools/bench/pg-bench.ts). Comments are dropped (V8 keeps every module's source text);
// the packages' licences ship with their node_modules copies in the image.
// The worker threads' modules are entries of their own, written next to main.js, where their packages
// look for them (`./integrity-check-thread.js`, `./sync-thread.js` beside import.meta.url). Left to
// node_modules: the native SQLite addon (Node loads its binary from there) and pg's optional native driver.
import { defineConfig } from 'rolldown';

const sibling = (file) => new URL(`../../packages/${file}`, import.meta.url).pathname;

export default defineConfig({
  input: {
    main: 'dist/main.js',
    'integrity-check-thread': sibling('store/dist/integrity-check-thread.js'),
    'sync-thread': sibling('mlflow-bridge/dist/sync-thread.js'),
  },
  platform: 'node',
  external: ['better-sqlite3', 'pg-native'],
  output: { dir: 'dist/bundle', format: 'esm', cleanDir: true, comments: false },
});
