// `npm run bench:a2a -- [--seeds 1,2,3] [--max-evals N] [--json out.json]`: scans the all-to-all fixtures
// (test/fixtures/zoo/all-to-all.json, issue 16) as a user would, data-free at the default settings bounded
// by --max-evals, and prints what the scan said beside the truth on real test images: every class y sent to
// mapping[y] by one trigger. The baseline the pairwise trigger reverse is measured against.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scanModel } from '../src/core/scan/scan.ts';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { describeTrigger } from '../test/data/triggers.ts';
import type { AllToAllZooEntry } from '../tools/fixtures/zoo.ts';
import { benchScanOptions, cliArg, ZOO_DIR } from './zoo.ts';

interface A2aRun {
  model: string;
  seed: number;
  verdict: string;
  flagged: number[];
  /** The smallest class's share of the median and of the next class's norm. */
  smallestRatio: number;
  smallestGap: number;
  evaluations: number;
}

/** A mapping in words: y → y + 1, or the permutation itself. */
function describeMapping(mapping: readonly number[]): string {
  return mapping.every((t, y) => t === (y + 1) % mapping.length) ? 'y → y+1' : `permutation [${mapping.join(' ')}]`;
}

async function scanOne(m: AllToAllZooEntry, seed: number, maxEvals: number): Promise<A2aRun> {
  const { files, entry } = await readModelFiles(join(ZOO_DIR, m.path));
  const { report } = await scanModel(files, benchScanOptions(entry, seed, maxEvals, m.inputRange));
  const classes = [...(report.detection?.classes ?? [])].sort((a, b) => a.normRatio - b.normRatio);
  return {
    model: m.name,
    seed,
    verdict: report.verdict,
    flagged: report.detection?.flagged ?? [],
    smallestRatio: classes[0]?.normRatio ?? NaN,
    smallestGap: classes[0]?.gap ?? NaN,
    evaluations: report.budget.evaluationsUsed,
  };
}

if (process.argv[1]?.endsWith('all-to-all.ts')) {
  const path = join(ZOO_DIR, 'all-to-all.json');
  if (!existsSync(path)) throw new Error(`${path} is missing: npm run fixtures:zoo builds it`);
  const models = JSON.parse(readFileSync(path, 'utf8')) as AllToAllZooEntry[];
  const seeds = (cliArg('seeds') ?? '1,2,3').split(',').map(Number);
  const maxEvals = Number(cliArg('max-evals') ?? 400_000);
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const runs: A2aRun[] = [];
  const f = (x: number) => x.toFixed(2);
  const lines = [
    `#### All-to-all fixtures, data-free scan (seeds ${seeds.join(', ')}, --max-evals ${maxEvals}; per seed: verdict, flagged, smallest class's share of the median / of the next)`,
    '',
    '| model | half | trigger | mapping | real acc | real ASR | ' + seeds.map((s) => `seed ${s}`).join(' | ') + ' |',
    '|---|---|---|---|---|---|' + seeds.map(() => '---|').join(''),
  ];
  for (const m of models) {
    const cells: string[] = [];
    for (const seed of seeds) {
      const r = await scanOne(m, seed, maxEvals);
      runs.push(r);
      cells.push(`${r.verdict}${r.flagged.length > 0 ? ` [${r.flagged.join(',')}]` : ''} ${f(r.smallestRatio)}/${f(r.smallestGap)}`);
      console.error(`${m.name} s${seed}: ${cells.at(-1)} (${r.evaluations} evaluations)`);
      if (cliArg('json')) writeFileSync(cliArg('json')!, JSON.stringify(runs, null, 1));
    }
    const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
    lines.push(
      `| ${m.name} | ${m.half} | ${describeTrigger(m.attack.trigger)} | ${describeMapping(m.attack.mapping)} | ${pct(m.accuracy)} | ${pct(m.asr)} | ${cells.join(' | ')} |`,
    );
  }
  console.log(lines.join('\n'));
}
