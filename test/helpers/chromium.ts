import { spawnSync } from 'node:child_process';

/** What a headless Debian chromium made of a page: the DOM after load and the console messages it logged. */
export interface BrowserRun {
  dom: string;
  console: string[];
}

/**
 * Opens a local file in Debian's chromium (headless, installed by `pretest`) and returns the serialised DOM
 * and every console message (CSP violations, uncaught errors, console.* calls), which chromium logs to
 * stderr as ":CONSOLE" lines with --enable-logging=stderr.
 */
export function openInChromium(path: string): BrowserRun {
  const r = spawnSync(
    '/usr/bin/chromium',
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--enable-logging=stderr',
      '--v=0',
      '--virtual-time-budget=3000',
      '--dump-dom',
      `file://${path}`,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (r.error) throw r.error;
  return { dom: r.stdout, console: r.stderr.split('\n').filter((l) => l.includes(':CONSOLE')) };
}
