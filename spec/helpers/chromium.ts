import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Debian's chromium package; undefined when it is not installed. */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** Headless, as root (no sandbox), and quiet: nothing reaches beyond the page's own origin. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--hide-scrollbars',
];

/**
 * Runs headless Chromium once on `url` with `args` (for --dump-dom, --screenshot); resolves with its
 * stdout. `budgetMs` of virtual time lets the page's timers and fetches run before the result is taken.
 */
async function runChromium(url: string, args: readonly string[], budgetMs: number, cwd?: string): Promise<string> {
  if (CHROMIUM === undefined) throw new Error('chromium is not installed (apt-get install chromium)');
  const profile = await mkdtemp(path.join(os.tmpdir(), 'kup-chromium-'));
  try {
    return await new Promise<string>((resolve, reject) => {
      execFile(
        CHROMIUM,
        [...FLAGS, `--user-data-dir=${profile}`, `--virtual-time-budget=${budgetMs}`, ...args, url],
        { timeout: 90_000, maxBuffer: 64 * 1024 * 1024, ...(cwd ? { cwd } : {}) },
        (err, stdout, stderr) => (err ? reject(new Error(`chromium failed: ${err.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** The DOM after the page's scripts ran for `budgetMs` of virtual time. */
export function dumpDom(url: string, budgetMs = 3000): Promise<string> {
  return runChromium(url, ['--dump-dom'], budgetMs);
}

/** A PNG of the page at `width`×`height`, written to `file`, after `budgetMs` of virtual time. */
export async function screenshot(url: string, file: string, width = 1280, height = 900, budgetMs = 3000): Promise<void> {
  await runChromium(url, [`--screenshot=${path.resolve(file)}`, `--window-size=${width},${height}`], budgetMs);
}
