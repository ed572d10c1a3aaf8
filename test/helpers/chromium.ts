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
export function openInChromium(path: string, windowSize: [number, number] = [1280, 900]): BrowserRun {
  const r = chromium([
    '--enable-logging=stderr',
    '--v=0',
    '--virtual-time-budget=3000',
    `--window-size=${windowSize.join(',')}`,
    '--dump-dom',
    `file://${path}`,
  ]);
  return { dom: r.stdout, console: r.stderr.split('\n').filter((l) => l.includes(':CONSOLE')) };
}

/** A PNG screenshot of a local page at a window size (a phone's is 390 wide), written to `png`. */
export function screenshotInChromium(path: string, png: string, windowSize: [number, number]): void {
  chromium(['--hide-scrollbars', `--window-size=${windowSize.join(',')}`, `--screenshot=${png}`, `file://${path}`]);
}

function chromium(args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync('/usr/bin/chromium', ['--headless', '--no-sandbox', '--disable-gpu', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return r;
}
