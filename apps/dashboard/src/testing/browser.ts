// Test helpers: Debian's Chromium driven by playwright-core (no browser download: the project's
// setup installs `chromium` with apt), and a real sidecar process serving the built dashboard.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';

/** The browser binary: $CHROMIUM_PATH, else Debian's /usr/bin/chromium. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The built dashboard the sidecar serves (`nx run @training-callbacks/dashboard:build`). */
export const DASHBOARD_DIST = path.join(import.meta.dirname, '..', '..', 'dist');

export async function launchChromium(): Promise<Browser & AsyncDisposable> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `no Chromium at ${CHROMIUM_PATH}: run tools/setup/system-packages.sh (apt-get install chromium) or set CHROMIUM_PATH`,
    );
  }
  if (!existsSync(path.join(DASHBOARD_DIST, 'index.html'))) {
    throw new Error(`the dashboard is not built: run npx nx run @training-callbacks/dashboard:build`);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // As root (CI) Chromium refuses to start with its sandbox; /dev/shm is small in containers.
    args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage'],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}
