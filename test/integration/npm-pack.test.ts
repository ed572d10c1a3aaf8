import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { reportSchemaErrors } from '../helpers/schema.ts';
import { MODELS } from '../helpers/fixtures.ts';
import { TEST_BUDGET_SECONDS } from '../helpers/scan-bounds.ts';

// The package as a user gets it: `npm pack`, installed globally into a prefix of its own and run from a
// folder outside the repository, so nothing of the work tree's node_modules or sources can stand in.
// Install scripts are skipped: only the Node server needs better-sqlite3's native build, and compiling it
// takes minutes where no prebuilt binary can be downloaded. Packing skips prepack's build: `npm test` built
// dist/ already, and rebuilding it here would rewrite the bundles other test files are running.

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { name: string; version: string; private?: boolean };
let dir: string;
let files: string[];
let bin: string;

const npm = (args: string[], cwd: string) => {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', timeout: 600_000 });
  expect(r.status, `npm ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sg-pack-'));
  const packed = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir], resolve('.'))) as {
    filename: string;
    files: { path: string }[];
  }[];
  files = packed[0]!.files.map((f) => f.path);
  npm(
    [
      'install',
      '--global',
      '--prefix',
      join(dir, 'prefix'),
      '--prefer-offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      join(dir, packed[0]!.filename),
    ],
    dir,
  );
  bin = join(dir, 'prefix', 'bin', 'shapguard');
}, 600_000);

describe('npm pack', () => {
  it('is publishable and carries what a user needs, not the tests or fixtures', () => {
    expect(pkg.private).toBeUndefined();
    for (const f of ['package.json', 'README.md', 'LICENSE', 'src/bin/shapguard.js', 'dist/cli.mjs', 'src/schema/report.v2.schema.json'])
      expect(files).toContain(f);
    expect(files.filter((f) => /^(test|bench|tools|demo)\/|fixtures|\.test\.|\.map$/.test(f))).toEqual([]);
  });

  it('installs globally and scans from a folder outside the repository', () => {
    const work = join(dir, 'work');
    mkdirSync(work);
    const version = spawnSync(bin, ['--version'], { cwd: work, encoding: 'utf8' });
    expect(version.stdout.trim()).toBe(`shapguard ${pkg.version}`);
    // A scan cut short by --max-evals: the engine loads, runs on wasm, and writes its report.
    const scan = spawnSync(
      bin,
      ['scan', join(MODELS, 'mnist-clean-1'), '--out', 'out', '--max-evals', '3000', '--budget', String(TEST_BUDGET_SECONDS), '--json'],
      {
        cwd: work,
        encoding: 'utf8',
        timeout: 300_000,
      },
    );
    expect(scan.status, scan.stderr).toBe(2);
    expect(readdirSync(join(work, 'out')).sort()).toEqual(['report.html', 'report.json']);
    const report = JSON.parse(readFileSync(join(work, 'out', 'report.json'), 'utf8')) as { verdict: string; backend: { name: string } };
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(report).toMatchObject({ verdict: 'incomplete', backend: { name: 'wasm' } });
  });
});
