// Entry point: `npm start -- [options]` (see --help). Runs on the Node the workspace pins. The same
// sidecar runs as `training-callbacks serve` (cli/main.ts).
import { EXIT_CODES } from './exit-codes.ts';
import { serve } from './serve.ts';

serve(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('training-callbacks: fatal error:', error);
    process.exit(EXIT_CODES.failure.code);
  },
);
