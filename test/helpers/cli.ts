import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ScanReport } from '../../src/core/output/report.ts';
import { boundedScanArgs } from './scan-bounds.ts';
import { reportSchemaErrors } from './schema.ts';
import { sharedResult } from './shared-run.ts';

const BIN = resolve('src/bin/shapguard.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  out: string;
  report: ScanReport | null;
  repairedDir: string | null;
}

/**
 * Runs the real `shapguard` command (the bundle `npm test` builds) and reads what it wrote (`$OUT` in `args`,
 * alone or as a path's start, is the output folder `out`). A scan gets the
 * suite's evaluation bound unless the test set one (scan-bounds.ts). Every report is checked against the
 * published schema here, so each CLI test also validates the report it produced.
 */
export function runCli(args: string[], out = mkdtempSync(join(tmpdir(), 'shapguard-out-'))): Promise<CliRun> {
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      [BIN, ...boundedScanArgs(args).map((a) => a.replace(/^\$OUT(?=\/|$)/, () => out))],
      { maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 99) : 0;
        const reportPath = join(out, 'report.json');
        const report = existsSync(reportPath) ? (JSON.parse(readFileSync(reportPath, 'utf8')) as ScanReport) : null;
        const repairedDir = existsSync(join(out, 'repaired')) ? join(out, 'repaired') : null;
        const errors = report ? reportSchemaErrors(report) : [];
        if (errors.length > 0) fail(new Error(`report.json does not match src/schema/report.v2.schema.json:\n${errors.join('\n')}`));
        else done({ code, stdout, stderr, out, report, repairedDir });
      },
    );
  });
}

/**
 * A scan several test files read and none changes (its output folder included), run once per test run
 * (shared-run.ts): for the arguments only, so a test that must see a run of its own calls runCli.
 */
export function runCliShared(args: string[]): Promise<CliRun> {
  return sharedResult(JSON.stringify(['shapguard', ...args]), () => runCli(args));
}

/**
 * The data-free scan of a committed fixture that the end-to-end files judge and the output files (report.html,
 * SARIF) read, shared between them (runCliShared): every output a scan writes, SARIF included.
 */
export function fixtureScanArgs(model: string): string[] {
  return ['scan', model, '--out', '$OUT', '--seed', '1', '--sarif', '$OUT/scan.sarif'];
}

/** A report without what legitimately differs between identical runs (timings). */
export function withoutTimings(r: ScanReport): unknown {
  return { ...r, timings: null };
}
