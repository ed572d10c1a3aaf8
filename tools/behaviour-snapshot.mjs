#!/usr/bin/env node
// The behaviour check of a refactor: scans every fixture through the built CLI (dist/cli.mjs) at fixed
// seeds and --max-evals, with a clock budget that never binds, and records each report.json without
// `timings` plus a sha256 of every repaired file. Run it before and after the change and compare:
//
//   node tools/behaviour-snapshot.mjs before.json [filter]     (on the old checkout, after npm run build)
//   node tools/behaviour-snapshot.mjs after.json [filter]
//   node tools/behaviour-snapshot.mjs --compare before.json after.json
//
// Fixtures: test/fixtures/models (seeds 1 and 2), test/fixtures/keras, the genuine Keras files in
// ../shared/fixtures/keras when that folder is there, and budget-cut runs (--max-evals 3000 and 40000).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const args = process.argv.slice(2);
if (args[0] === '--compare') {
  const [a, b] = args.slice(1).map((p) => JSON.parse(readFileSync(p, 'utf8')));
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  const differ = names.filter((n) => JSON.stringify(a[n]) !== JSON.stringify(b[n]));
  for (const n of names) console.log(`${differ.includes(n) ? 'DIFFERS' : 'same   '} ${n}`);
  console.log(`${names.length - differ.length} of ${names.length} runs identical`);
  process.exit(differ.length === 0 ? 0 : 1);
}
const [outFile, only] = args;
if (!outFile) {
  console.error('usage: behaviour-snapshot.mjs <out.json> [filter] | --compare <a.json> <b.json>');
  process.exit(2);
}
const root = process.cwd();
const cli = join(root, 'dist/cli.mjs');
const models = join(root, 'test/fixtures/models');
const keras = join(root, 'test/fixtures/keras');
const shared = resolve(root, '../shared/fixtures/keras');
const runs = [];
for (const name of readdirSync(models).sort()) {
  if (existsSync(join(models, name, 'model.json')))
    for (const seed of [1, 2]) runs.push({ name: `${name}@${seed}`, path: join(models, name, 'model.json'), seed, maxEvals: 400000 });
}
for (const name of readdirSync(keras).sort()) runs.push({ name: `keras/${name}@1`, path: join(keras, name), seed: 1, maxEvals: 400000 });
if (existsSync(shared)) {
  for (const name of readdirSync(shared).sort())
    if (!name.endsWith('.md')) runs.push({ name: `shared/${name}@1`, path: join(shared, name), seed: 1, maxEvals: 400000 });
}
for (const name of ['mnist-badnets', 'glyphs-badnets', 'mnist-clean-1']) {
  for (const maxEvals of [3000, 40000])
    runs.push({ name: `${name}@1/${maxEvals}`, path: join(models, name, 'model.json'), seed: 1, maxEvals });
}
const sha = (b) => createHash('sha256').update(b).digest('hex');
const walk = (dir) => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
const result = {};
for (const r of runs) {
  if (only && !r.name.includes(only)) continue;
  const out = mkdtempSync(join(tmpdir(), 'snap-'));
  let code = 0;
  try {
    const argv = [
      cli,
      'scan',
      r.path,
      '--out',
      out,
      '--seed',
      String(r.seed),
      '--max-evals',
      String(r.maxEvals),
      '--budget',
      '100000',
      '--json',
    ];
    execFileSync(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    code = e.status;
  }
  const report = existsSync(join(out, 'report.json')) ? JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) : null;
  if (report) delete report.timings;
  const dir = join(out, 'repaired');
  const repaired = existsSync(dir)
    ? Object.fromEntries(
        walk(dir)
          .sort()
          .map((f) => [relative(dir, f), sha(readFileSync(f))]),
      )
    : null;
  result[r.name] = { code, report, repaired };
  console.log(r.name, code, report?.verdict, report?.detection?.flagged ?? '', report?.repair?.status ?? '');
  rmSync(out, { recursive: true, force: true });
}
writeFileSync(outFile, JSON.stringify(result, null, 1));
