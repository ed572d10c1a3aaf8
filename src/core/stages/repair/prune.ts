import * as tf from '@tensorflow/tfjs-core';
import type { Stage } from '../../budget.ts';
import type { TailEvaluator } from '../shapley/backdoor-game.ts';
import type { PlayerSet } from '../players.ts';
import { readAndDispose } from '../../tfjs/tensors.ts';

export interface PruneConfig {
  /** Reversed-trigger success on D_rev that counts as removed. */
  maxAsr: number;
  /**
   * The accuracy guard: the largest allowed mean drop, over the clean guard images, of the probability the
   * pruned model gives the class the original predicted. Continuous, so a few images can resolve it, and
   * not fooled by synthetic images that sit next to a decision boundary and flip at the slightest change.
   */
  maxProbabilityDrop: number;
  /** Most players that may be pruned, as a share of all players. */
  maxPruneShare: number;
  /**
   * Past the smallest prefix that removes the reversed trigger, keep pruning players whose Shapley value
   * is at least this share of the backdoor's full value: the reversed trigger is only an approximation of
   * the planted one, and a player carrying that much of it is part of the backdoor circuit.
   */
  minValueShare: number;
  /** Prune-and-recheck rounds at most. */
  maxRounds: number;
  /**
   * Split the position players that carry the backdoor into their channels (cells), estimate those, and
   * prune cells where that passes the guard with less loss: a position also carries what the model needs
   * there. Off by default: on the tuning half the post-repair check refused most cell repairs, right ones
   * included, and fewer repairs were certified than with whole positions (docs/benchmarks.md, "Cells").
   */
  refineCells: boolean;
}

export const PRUNE_DEFAULTS: PruneConfig = {
  maxAsr: 0.05,
  maxProbabilityDrop: 0.03,
  maxPruneShare: 0.1,
  minValueShare: 0.1,
  maxRounds: 3,
  refineCells: false,
};

/** Per flagged target: the tail over its stamped D_rev images. */
export interface TargetProbe {
  target: number;
  order: number[];
  /** Shapley estimate per player, and v(all players). */
  values: number[];
  fullValue: number;
  stamped: TailEvaluator;
}

export interface PruneStep {
  pruned: number;
  asr: Record<string, number>;
  /** Share of the clean guard images whose predicted class is the original's. */
  agreement: number;
  /** Mean drop of the original's predicted class's probability on the clean guard images (the guard). */
  probabilityDrop: number;
}

export interface PruneResult {
  status: 'repaired' | 'not-repaired';
  reason: string | null;
  pruned: number[];
  curve: PruneStep[];
}

/** The index of the largest of `k` values from `at`: one row's class in a flat [rows, K] probability array. */
export function argmaxOf(values: ArrayLike<number>, at: number, k: number): number {
  let best = 0;
  for (let c = 1; c < k; c++) if (values[at + c]! > values[at + best]!) best = c;
  return best;
}

/** argmax per row of a [rows, K] tensor, which it disposes (every caller passes a fresh one). */
function argmaxRows(t: tf.Tensor2D): Int32Array {
  const a = tf.argMax(t, 1);
  t.dispose();
  return readAndDispose(a) as Int32Array;
}

/**
 * Prunes players in decreasing Shapley order (merged over the flagged targets, each target's next best
 * first) and stops at the smallest prefix that removes every reversed trigger, within the agreement
 * guard and the cap. Prefixes are scored as coalitions, in batches, through the cached tails.
 */
export function choosePrune(
  players: PlayerSet,
  probes: TargetProbe[],
  clean: TailEvaluator,
  cfg: PruneConfig,
  stage: Stage,
  already: readonly number[] = [],
): PruneResult {
  const units = (ks: readonly number[]) => ks.reduce((sum, k) => sum + players.unitsOf(k), 0);
  const cap = Math.max(1, Math.floor(players.baseSize * cfg.maxPruneShare)) - units(already);
  const order: number[] = [];
  if (cap <= 0) {
    return {
      status: 'not-repaired',
      reason: `the prune cap stopped it: ${already.length} players (${(cfg.maxPruneShare * 100).toFixed(0)}% of ${players.baseSize}) are already pruned`,
      pruned: [],
      curve: [],
    };
  }
  const cursors = probes.map(() => 0);
  const skip = (k: number) => order.includes(k) || already.includes(k);
  let used = 0;
  while (order.length < players.size) {
    let added = false;
    probes.forEach((p, i) => {
      while (cursors[i]! < p.order.length && skip(p.order[cursors[i]!]!)) cursors[i]!++;
      const next = p.order[cursors[i]!];
      if (next !== undefined && used + players.unitsOf(next) <= cap + 1e-9) {
        order.push(next);
        used += players.unitsOf(next);
        added = true;
      }
    });
    if (!added) break;
  }
  const prefixes: Uint8Array[] = [];
  for (let k = 0; k <= order.length; k++) {
    const c = new Uint8Array(players.size).fill(1);
    for (const i of [...already, ...order.slice(0, k)]) c[i] = 0;
    prefixes.push(c);
  }
  const baseProbs = readAndDispose(clean.probabilities([new Uint8Array(players.size).fill(1)])) as Float32Array;
  const K = baseProbs.length / clean.rows;
  const base = Int32Array.from({ length: clean.rows }, (_, r) => argmaxOf(baseProbs, r * K, K));
  // How far a found prefix may grow: players that carry a large share of some target's backdoor.
  const heavy = (k: number) => probes.some((p) => p.values[order[k]!]! >= cfg.minValueShare * p.fullValue);
  const curve: PruneStep[] = [];
  const batch = 8;
  let chosen = -1;
  let minimal = -1;
  let sawAsrOk = false;
  for (let s = 0; s < prefixes.length && chosen < 0; s += batch) {
    const part = prefixes.slice(s, s + batch);
    const cleanProbs = readAndDispose(clean.probabilities(part)) as Float32Array;
    stage.spend(clean.cost(part.length));
    const asrByTarget = probes.map((p) => {
      const pred = argmaxRows(p.stamped.probabilities(part));
      stage.spend(p.stamped.cost(part.length));
      return part.map((_, j) => {
        let hit = 0;
        for (let r = 0; r < p.stamped.rows; r++) if (pred[j * p.stamped.rows + r] === p.target) hit++;
        return hit / p.stamped.rows;
      });
    });
    for (let j = 0; j < part.length; j++) {
      let agree = 0;
      let drop = 0;
      for (let r = 0; r < clean.rows; r++) {
        const at = (j * clean.rows + r) * K;
        if (argmaxOf(cleanProbs, at, K) === base[r]) agree++;
        drop += Math.max(0, baseProbs[r * K + base[r]!]! - cleanProbs[at + base[r]!]!);
      }
      const step: PruneStep = { pruned: s + j, asr: {}, agreement: agree / clean.rows, probabilityDrop: drop / clean.rows };
      probes.forEach((p, i) => (step.asr[String(p.target)] = asrByTarget[i]![j]!));
      curve.push(step);
      const k = s + j;
      const agreeOk = step.probabilityDrop <= cfg.maxProbabilityDrop;
      if (minimal < 0) {
        const asrOk = probes.every((_, i) => asrByTarget[i]![j]! <= cfg.maxAsr);
        if (asrOk && k > 0) {
          sawAsrOk = true;
          if (agreeOk) minimal = k;
        }
      } else if (!agreeOk) {
        chosen = k - 1;
        break;
      }
      if (minimal >= 0 && (k >= order.length || !heavy(k))) {
        chosen = agreeOk ? k : k - 1;
        break;
      }
    }
  }
  if (chosen < 0 && minimal >= 0) chosen = Math.min(order.length, curve.length - 1);
  if (chosen > 0) return { status: 'repaired', reason: null, pruned: order.slice(0, chosen), curve };
  const reason = sawAsrOk
    ? `the accuracy guard stopped it: every prefix that removes the reversed trigger lowers the original class's probability on the clean guard images by more than ${cfg.maxProbabilityDrop} on average`
    : `the prune cap stopped it: pruning ${order.length + already.length} players (the cap: ${(cfg.maxPruneShare * 100).toFixed(0)}% of ${players.baseSize}) does not bring the reversed trigger's success to ${(cfg.maxAsr * 100).toFixed(0)}% or less`;
  return { status: 'not-repaired', reason, pruned: [], curve };
}
