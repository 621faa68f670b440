// Builds the dashboard into dist/ (static files the sidecar serves on its HTTP listener). Workspace
// packages resolve to their TypeScript sources (the custom condition), like everywhere else.
import { defaultClientConditions, defineConfig } from 'vite';

export default defineConfig({
  resolve: { conditions: ['@training-callbacks/source', ...defaultClientConditions] },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The sidecar serves /assets/* as immutable: every file there must carry a content hash.
    assetsDir: 'assets',
    sourcemap: true,
    target: 'es2022',
  },
  server: {
    // `npm run dev`: forward the API to a sidecar's HTTP listener (TRAINING_CALLBACKS_HTTP).
    proxy: Object.fromEntries(
      ['/trainingcallbacks.v1.TrainingCallbacks', '/artifacts'].map((prefix) => [
        prefix,
        `http://${process.env.TRAINING_CALLBACKS_HTTP ?? '127.0.0.1:50052'}`,
      ]),
    ),
  },
});
