// The Shapley saving: model evaluations that threshold + ε-greedy need to reach a reference top-k, against
// plain permutation sampling, on each patch-trigger fixture's own backdoor game (its planted target, the
// reversed trigger stamped on synthetic images, the default players).
import { join } from 'node:path';
import { BackdoorGame, TailEvaluator } from '../src/core/stages/shapley/backdoor-game.ts';
import { Budget } from '../src/core/budget.ts';
import { describeModel, playerLayers } from '../src/core/model/model-info.ts';
import { loadTfjsModel } from '../src/core/model/tfjs-layers.ts';
import { PlayerSet } from '../src/core/stages/players.ts';
import { Rng } from '../src/core/util/rng.ts';
import { estimateShapley, SHAPLEY_DEFAULTS, type ShapleyConfig } from '../src/core/stages/shapley/shapley.ts';
import { stampReversed } from '../src/core/stages/trigger/stamp.ts';
import { synthesize, SYNTH_DEFAULTS } from '../src/core/stages/synthesis/synth.ts';
import { reverseTriggers, TRIGGER_DEFAULTS } from '../src/core/stages/trigger/reverse.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import type { ManifestEntry } from '../tools/fixtures/specs.ts';
import { MODELS } from '../test/helpers/fixtures.ts';

const KS = [1, 2, 3];
const RUN_PERMUTATIONS = 100;
/** The reference: plain sampling 10× longer than a compared run, as independent parts for its error. */
const REFERENCE_PARTS = 4;
const REFERENCE_PART_PERMUTATIONS = (10 * RUN_PERMUTATIONS) / REFERENCE_PARTS;
const SEEDS = Array.from({ length: 9 }, (_, i) => 6 + i);

const unbounded = () => new Budget(1e9, Infinity).stage(1);
const ranked = (v: number[]) => v.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
const topOf = (v: number[], k: number) =>
  ranked(v)
    .slice(0, k)
    .map(([, i]) => i)
    .sort((a, b) => a - b)
    .join(',');
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;

/**
 * One table row per fixture and k: the reference top-k, how far its k-th value stands above the next in
 * standard errors (below about 3 the reference itself has not decided it), and the median over 9 seeds of
 * the evaluations after which each estimator's top-k equals the reference's and stays so for the rest of
 * a 100-permutation run.
 */
export async function benchShapleySaving(fixtures: ManifestEntry[]): Promise<string[]> {
  const rows: string[] = [];
  for (const fx of fixtures) {
    // The MNIST patch fixtures: on the 43-class glyph model a 10× plain reference alone takes hours here.
    if (fx.attack === null || fx.attack.trigger.kind !== 'badnets' || fx.dataset !== 'mnist') continue;
    const target = fx.attack.target;
    const { files, entry } = await readModelFiles(join(MODELS, fx.path));
    const loaded = await loadTfjsModel(files, entry);
    const info = describeModel(loaded.model);
    const players = new PlayerSet(info, playerLayers(info));
    const rng = new Rng(1);
    const synth = synthesize(info, [0, 1], SYNTH_DEFAULTS, rng.fork(1), unbounded());
    const rev = reverseTriggers(info, synth.rev, [0, 1], TRIGGER_DEFAULTS, rng.fork(2), unbounded(), { targets: [target] });
    const trig = rev.triggers[0]!;
    const tail = new TailEvaluator(info, players, stampReversed(synth.rev, info.shape, trig.mask, trig.pattern, target));
    const game = new BackdoorGame([{ tail, target }]);
    const plain: ShapleyConfig = { ...SHAPLEY_DEFAULTS, useThreshold: false, useGreedy: false, stableFor: Infinity, minPermutations: 0 };

    const parts = Array.from(
      { length: REFERENCE_PARTS },
      (_, p) => estimateShapley(game, { ...plain, maxPermutations: REFERENCE_PART_PERMUTATIONS }, new Rng(1000 + p), unbounded()).values,
    );
    const reference = parts[0]!.map((_, i) => parts.reduce((a, v) => a + v[i]!, 0) / REFERENCE_PARTS);
    const stderr = reference.map((m, i) =>
      Math.sqrt(parts.reduce((a, v) => a + (v[i]! - m) ** 2, 0) / (REFERENCE_PARTS - 1) / REFERENCE_PARTS),
    );
    const order = ranked(reference);

    const reach = (cfg: ShapleyConfig, seed: number): number[] => {
      const since: (number | null)[] = KS.map(() => null);
      const refs = KS.map((k) => topOf(reference, k));
      estimateShapley(
        game,
        { ...cfg, topK: 3, stableFor: Infinity, minPermutations: 0, maxPermutations: RUN_PERMUTATIONS },
        new Rng(seed),
        unbounded(),
        (values, _p, evals) => {
          KS.forEach((k, i) => {
            if (topOf(values, k) === refs[i]) since[i] ??= evals;
            else since[i] = null;
          });
        },
      );
      return since.map((x) => x ?? Infinity);
    };
    const plainRuns = SEEDS.map((s) => reach(plain, s));
    const fastRuns = SEEDS.map((s) => reach(SHAPLEY_DEFAULTS, s));
    KS.forEach((k, i) => {
      const [vk, ik] = order[k - 1]!;
      const [vn, inext] = order[k]!;
      const z = (vk - vn) / Math.hypot(stderr[ik]!, stderr[inext]!);
      const p = median(plainRuns.map((r) => r[i]!));
      const f = median(fastRuns.map((r) => r[i]!));
      const hits = (runs: number[][]) => runs.filter((r) => Number.isFinite(r[i]!)).length;
      const cell = (x: number, runs: number[][]) => `${Number.isFinite(x) ? Math.round(x) : 'not reached'} (${hits(runs)}/${SEEDS.length})`;
      const saving = Number.isFinite(p) && Number.isFinite(f) ? `${(p / f).toFixed(1)}×` : '–';
      rows.push(
        `| ${fx.name} | ${players.size} | ${k} | ${topOf(reference, k)} | ${z.toFixed(1)} | ${cell(p, plainRuns)} | ${cell(f, fastRuns)} | ${saving} |`,
      );
    });
    tail.dispose();
    loaded.model.dispose();
    console.error(`done Shapley saving ${fx.name}`);
  }
  return rows;
}

export const SHAPLEY_SAVING_HEADER = [
  'fixture',
  'players',
  'k',
  'reference top-k',
  'k-th above next (standard errors)',
  'plain sampling: evaluations to reach it (seeds reaching it)',
  'threshold + ε-greedy: evaluations to reach it (seeds reaching it)',
  'saving',
];
export const SHAPLEY_SAVING_TITLE = `Shapley saving (reference = plain sampling, ${10 * RUN_PERMUTATIONS} permutations; medians of ${SEEDS.length} seeds, ${RUN_PERMUTATIONS}-permutation runs)`;
