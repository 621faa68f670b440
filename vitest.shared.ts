// Vitest resolves through Vite, not tsc: teach it the workspace's custom export condition so
// that tests import each package's TypeScript source, exactly as `node --conditions` does at run time.
import { defaultServerConditions } from 'vite';

const conditions = ['@training-callbacks/source', ...defaultServerConditions];

export const sourceConditions = {
  resolve: { conditions },
  ssr: { resolve: { conditions } },
};
