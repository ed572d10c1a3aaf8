// `npm run bench:a2a -- [--seeds 1,2,3] [--max-evals N] [--few-shot n] [--only name,...] [--set stage.key=v,...] [--json out.json]`:
// scans the all-to-all fixtures (test/fixtures/zoo/all-to-all.json, issue 16) as a user would, at the
// default settings bounded by --max-evals (data-free, or with n trusted training-split images per class),
// and prints what the scan said beside the truth on real test images: every class y sent to mapping[y] by
// one trigger. For a repaired model, the planted trigger's real all-to-all ASR and the real accuracy after.
// `--oracle`: instead, the pruning bound with the real trigger (oracleRow).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../src/core/model/load.ts';
import { describeModel, playerLayers } from '../src/core/model/model-info.ts';
import { PlayerSet } from '../src/core/stages/players.ts';
import { TailEvaluator } from '../src/core/stages/shapley/backdoor-game.ts';
import { scanModel } from '../src/core/scan/scan.ts';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { accuracy, allToAllSuccessRate } from '../test/data/evaluate.ts';
import { describeTrigger, stamp } from '../test/data/triggers.ts';
import type { AllToAllZooEntry } from '../tools/fixtures/zoo.ts';
import { benchScanOptions, cliArg, type Overrides, parseOverrides, testSet, benchSample, ZOO_DIR } from './zoo.ts';

interface A2aRun {
  model: string;
  seed: number;
  verdict: string;
  flagged: number[];
  /** The smallest class's share of the median and of the next class's norm. */
  smallestRatio: number;
  smallestGap: number;
  evaluations: number;
  seconds: number;
  /** The all-to-all check's score and how many sources its mapping got right (null: it did not run). */
  score: number | null;
  mappingHits: number | null;
  /** Per source: the median share its mapped trigger sends to the other classes' own targets. */
  follows: number[];
  status: string | null;
  reason: string | null;
  pruned: number;
  /** The repair check's score on held-back images (null: none ran). */
  checkScore: number | null;
  /** The same check on the original model (its power; the repair counts only when it flags). */
  checkOriginal: number | null;
  /** The pair check's universal class, if it flagged one (few-shot). */
  universalTarget: number | null;
  /** Real test images: the planted trigger's all-to-all ASR and the accuracy, before and after (null: nothing written). */
  asrAfter: number | null;
  accBefore: number;
  accAfter: number | null;
}

/** A mapping in words: y → y + 1, or the permutation itself. */
function describeMapping(mapping: readonly number[]): string {
  return mapping.every((t, y) => t === (y + 1) % mapping.length) ? 'y → y+1' : `permutation [${mapping.join(' ')}]`;
}

async function scanOne(m: AllToAllZooEntry, seed: number, maxEvals: number, fewShot: number, overrides: Overrides): Promise<A2aRun> {
  const { files, entry } = await readModelFiles(join(ZOO_DIR, m.path));
  const sample = fewShot > 0 ? { cleanSample: await benchSample(m.dataset, fewShot, seed) } : {};
  const t0 = performance.now();
  const { report, repaired } = await scanModel(files, { ...benchScanOptions(entry, seed, maxEvals, m.inputRange, overrides), ...sample });
  const seconds = (performance.now() - t0) / 1000;
  const classes = [...(report.detection?.classes ?? [])].sort((a, b) => a.normRatio - b.normRatio);
  const data = testSet(m.dataset);
  const scale = m.inputRange[1];
  const original = (await loadModel(files, entry)).model;
  const accBefore = accuracy(original, data, scale);
  original.dispose();
  let asrAfter: number | null = null;
  let accAfter: number | null = null;
  if (repaired !== null) {
    const fixed = (await loadModel(repaired, entry)).model;
    asrAfter = allToAllSuccessRate(fixed, data, m.attack.trigger, m.attack.mapping, scale);
    accAfter = accuracy(fixed, data, scale);
    fixed.dispose();
  }
  const a = report.allToAll;
  return {
    model: m.name,
    seed,
    verdict: report.verdict,
    flagged: report.detection?.flagged ?? [],
    smallestRatio: classes[0]?.normRatio ?? NaN,
    smallestGap: classes[0]?.gap ?? NaN,
    evaluations: report.budget.evaluationsUsed,
    seconds,
    score: a?.checked ? a.score : null,
    mappingHits: a?.checked ? a.mapping.filter((t, s) => t === m.attack.mapping[s]).length : null,
    follows: a?.follows ?? [],
    status: report.repair?.status ?? null,
    reason: report.repair?.reason ?? report.reason ?? null,
    pruned: report.repair?.pruned.length ?? 0,
    checkScore: a?.repairCheck?.score ?? null,
    checkOriginal: a?.repairCheck?.original ?? null,
    universalTarget: a?.universalTarget ?? null,
    asrAfter,
    accBefore,
    accAfter,
  };
}

/**
 * The pruning bound with the REAL trigger (no scanner has it): every player removed alone, ranked by how far
 * that lowers the planted all-to-all trigger's success on 500 real test images, then the best k removed
 * together and judged on 1,500 others. Where even this order cannot bring the ASR down within the scan's
 * cap (10% of the players), no pruning the scan picks can. One Markdown row.
 */
async function oracleRow(m: AllToAllZooEntry): Promise<string> {
  const { files, entry } = await readModelFiles(join(ZOO_DIR, m.path));
  const loaded = await loadModel(files, entry);
  const info = describeModel(loaded.model);
  const players = new PlayerSet(info, playerLayers(info));
  const set = testSet(m.dataset);
  const px = set.shape[0] * set.shape[1] * set.shape[2];
  const part = (a: number, b: number) => ({ images: set.images.slice(a * px, b * px), labels: Array.from(set.labels.subarray(a, b)) });
  const probe = part(0, 500);
  const judged = part(500, 2000);
  const scale = m.inputRange[1];
  const tail = (images: Float32Array) =>
    new TailEvaluator(
      info,
      players,
      images.map((v) => v * scale),
    );
  const stampedProbe = tail(stamp(probe.images, set.shape, m.attack.trigger));
  const stampedJudged = tail(stamp(judged.images, set.shape, m.attack.trigger));
  const cleanJudged = tail(judged.images);
  const share = (t: TailEvaluator, labels: number[], coalitions: Uint8Array[], want: (label: number) => number) => {
    const p = tf.argMax(t.probabilities(coalitions), 1);
    const pred = p.dataSync();
    p.dispose();
    return coalitions.map((_, j) => labels.filter((l, r) => pred[j * t.rows + r] === want(l)).length / t.rows);
  };
  const without = (ks: number[]) => Uint8Array.from({ length: players.size }, (_, k) => (ks.includes(k) ? 0 : 1));
  const mapped = (l: number) => m.attack.mapping[l]!;
  const alone = players.players.map((_, k) => share(stampedProbe, probe.labels, [without([k])], mapped)[0]!);
  const order = alone.map((_, k) => k).sort((a, b) => alone[a]! - alone[b]! || a - b);
  const ks = [0, 1, 2, 4, 8];
  const coalitions = ks.map((k) => without(order.slice(0, k)));
  const asr = share(stampedJudged, judged.labels, coalitions, mapped);
  const acc = share(cleanJudged, judged.labels, coalitions, (l) => l);
  for (const t of [stampedProbe, stampedJudged, cleanJudged]) t.dispose();
  loaded.model.dispose();
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return `| ${m.name} | ${m.half} | ${players.size} | ${ks.map((k, i) => `${k}: ${pct(asr[i]!)} / ${pct(acc[i]!)}`).join(' · ')} |`;
}

if (process.argv[1]?.endsWith('all-to-all.ts')) {
  const path = join(ZOO_DIR, 'all-to-all.json');
  if (!existsSync(path)) throw new Error(`${path} is missing: npm run fixtures:zoo builds it`);
  const only = cliArg('only')?.split(',');
  const models = (JSON.parse(readFileSync(path, 'utf8')) as AllToAllZooEntry[]).filter((m) => only === undefined || only.includes(m.name));
  const seeds = (cliArg('seeds') ?? '1,2,3').split(',').map(Number);
  const maxEvals = Number(cliArg('max-evals') ?? 400_000);
  const fewShot = Number(cliArg('few-shot') ?? 0);
  const overrides = parseOverrides(cliArg('set'));
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  if (process.argv.includes('--oracle')) {
    const rows = [];
    for (const m of models.filter((x) => x.dataset !== 'glyphs')) rows.push(await oracleRow(m));
    console.log(
      [
        '#### All-to-all pruning bound with the real trigger (players ranked by the planted trigger alone; k best pruned: real all-to-all ASR / accuracy)',
        '',
        '| model | half | players | k pruned: ASR / accuracy |',
        '|---|---|---|---|',
        ...rows,
      ].join('\n'),
    );
    process.exit(0);
  }
  const runs: A2aRun[] = [];
  const f = (x: number) => x.toFixed(2);
  const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
  const mode =
    (fewShot > 0 ? `few-shot, ${fewShot} trusted images per class` : 'data-free') + (cliArg('set') ? `, --set ${cliArg('set')}` : '');
  const lines = [
    `#### All-to-all fixtures, ${mode} (seeds ${seeds.join(', ')}, --max-evals ${maxEvals}; per seed: verdict${fewShot > 0 ? ', check score, mapping right, repair status, real all-to-all ASR / accuracy after' : ", flagged, smallest class's share of the median / of the next"})`,
    '',
    '| model | half | trigger | mapping | real acc | real ASR | ' + seeds.map((s) => `seed ${s}`).join(' | ') + ' |',
    '|---|---|---|---|---|---|' + seeds.map(() => '---|').join(''),
  ];
  for (const m of models) {
    const cells: string[] = [];
    for (const seed of seeds) {
      const r = await scanOne(m, seed, maxEvals, fewShot, overrides);
      runs.push(r);
      const repair = r.status === 'repaired' ? `repaired (${r.pruned}): ${pct(r.asrAfter)} / ${pct(r.accAfter)}` : (r.status ?? '–');
      cells.push(
        fewShot > 0
          ? `${r.verdict} ${r.score === null ? '–' : f(r.score)} ${r.mappingHits ?? '–'}/10, ${repair}`
          : `${r.verdict}${r.flagged.length > 0 ? ` [${r.flagged.join(',')}]` : ''} ${f(r.smallestRatio)}/${f(r.smallestGap)}`,
      );
      console.error(`${m.name} s${seed}: ${cells.at(-1)} (${r.evaluations} evaluations, ${r.seconds.toFixed(1)} s) ${r.reason ?? ''}`);
      if (cliArg('json')) writeFileSync(cliArg('json')!, JSON.stringify(runs, null, 1));
    }
    lines.push(
      `| ${m.name} | ${m.half} | ${describeTrigger(m.attack.trigger)} | ${describeMapping(m.attack.mapping)} | ${pct(m.accuracy)} | ${pct(m.asr)} | ${cells.join(' | ')} |`,
    );
  }
  console.log(lines.join('\n'));
}
