// `npm run bench:refusals -- --json a.json,b.json`: every repair a saved bench:zoo run pruned and then refused
// (the post-repair check, the held-back check, the sample's size), rebuilt from the run's players and judged on
// real test images with the really planted trigger: how many refusals kept a backdoor out of a deployment, and
// how many turned away a repair that worked. No scan runs; a 100-run file is judged in a minute. One table per
// half; the held-out half is for reporting, never for choosing (docs/benchmarks.md).
import { readFileSync } from 'node:fs';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { cliArg, judgePruning, testSet, type BenchModel, type ZooRun } from './zoo.ts';

/** One refused pruning, judged. */
export interface Refusal {
  model: string;
  half: BenchModel['half'];
  seed: number;
  reason: string;
  players: number;
  /** The planted trigger's real ASR and the real accuracy drop (points) the candidate would have had. */
  asr: number;
  drop: number;
}

/** The refusal's kind, from its reason's wording (scan/steps.ts and scan/repair.ts write them). */
export function refusalKind(reason: string): string {
  if (/on the held-back sample/.test(reason)) return 'held-back check';
  if (/failed the check on images the repair never saw/.test(reason)) return 'check on fresh synthetic images';
  if (/held back .* fewer than/.test(reason)) return 'sample too small';
  return 'other';
}

/** Counts per kind: refusals, those whose candidate kept the trigger (> 10%), and those that were repairs to the goal. */
export function refusalTable(rows: readonly Refusal[]): string {
  const kinds = [...new Set(rows.map((r) => refusalKind(r.reason)))];
  const lines = [
    '| refused by | refusals | candidate kept the trigger (real ASR > 10%) | a real repair (≤ 10%) | … to the goal (≤ 2%, ≤ 0.5 pt) |',
    '|---|---|---|---|---|',
  ];
  for (const k of kinds) {
    const rs = rows.filter((r) => refusalKind(r.reason) === k);
    const kept = rs.filter((r) => r.asr > 0.1).length;
    const goal = rs.filter((r) => r.asr <= 0.02 && r.drop <= 0.5).length;
    lines.push(`| ${k} | ${rs.length} | ${kept} | ${rs.length - kept} | ${goal} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const files = (cliArg('json') ?? '').split(',').filter(Boolean);
  if (files.length === 0) throw new Error('give --json a.json[,b.json]: bench:zoo runs (full scans, not --detect-only)');
  const rows: Refusal[] = [];
  for (const f of files) {
    const saved = JSON.parse(readFileSync(f, 'utf8')) as { models: BenchModel[]; runs: ZooRun[] };
    for (const r of saved.runs) {
      const m = saved.models.find((x) => x.name === r.model)!;
      if (r.status === 'repaired' || r.pruned.length === 0 || m.attack === null) continue;
      const { files: modelFiles, entry } = await readModelFiles(m.path);
      const judged = await judgePruning(m, modelFiles, entry, r.pruned, testSet(m.dataset));
      const row = {
        model: m.name,
        half: m.half,
        seed: r.seed,
        reason: r.reason ?? '',
        players: r.pruned.length,
        asr: judged.asr!,
        drop: (r.accBefore - judged.acc) * 100,
      };
      rows.push(row);
      console.error(
        `${row.model} seed ${row.seed}: ${refusalKind(row.reason)}, ${row.players} pruned: real ASR ${(row.asr * 100).toFixed(1)}%, drop ${row.drop.toFixed(2)} pt`,
      );
    }
  }
  for (const half of ['tuning', 'held-out'] as const) {
    const rs = rows.filter((r) => r.half === half);
    if (rs.length > 0) console.log(`\n${half} half\n\n${refusalTable(rs)}`);
  }
}

if (process.argv[1]?.endsWith('refusals.ts') || process.argv[1]?.endsWith('refusals.mjs')) await main();
