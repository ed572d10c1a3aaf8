import * as tf from '@tensorflow/tfjs-core';
import type { Stage, StopReason } from '../../budget.ts';
import type { RunOptions } from '../../tfjs/graph.ts';
import { groupedStep } from '../../tfjs/grouped-step.ts';
import { RowAdam } from '../../tfjs/row-adam.ts';
import { readAndDispose, variableFrom } from '../../tfjs/tensors.ts';
import { logProbs, type ModelInfo } from '../../model/model-info.ts';
import type { Rng } from '../../util/rng.ts';
import type { ImageBatch } from '../synthesis/synth.ts';

export interface TriggerConfig {
  /** Rows per target: D_rev images of other classes the candidate trigger must flip. */
  imagesPerTarget: number;
  maxSteps: number;
  learningRate: number;
  initialCost: number;
  /** Attack success a reversed trigger must reach to count (Neural Cleanse: 0.99). */
  successTarget: number;
  /** Steps of success (or failure) before the cost is doubled (or halved). */
  patience: number;
  /** A target stops once its best mask has not shrunk by 1% for this many steps. */
  earlyStop: number;
  /** Above this many classes, screen all targets briefly, then refine the smallest masks. */
  screenAbove: number;
  screenShare: number;
  refineCount: number;
  /**
   * A target cut off by the budget still counts as covered once its trigger reached the success target
   * and was optimised for this many steps: its norm is then an upper bound that has stopped moving much.
   */
  coveredSteps: number;
  /**
   * The classes with the smallest masks are optimised again from a fresh start: mask optimisation is not
   * convex, and a planted trigger's mask can settle at two or three times its size (measured on 2 of 10
   * backdoored runs), which hides it among the clean classes.
   */
  restarts: number;
  /**
   * A restart replaces the first run only when its mask is at most this fraction of the first: smaller
   * differences are run-to-run noise, and keeping the minimum of two runs for a few classes only would make
   * those classes look smaller than the rest.
   */
  restartAccept: number;
}

export const TRIGGER_DEFAULTS: TriggerConfig = {
  imagesPerTarget: 8,
  maxSteps: 300,
  learningRate: 0.1,
  initialCost: 1e-3,
  successTarget: 0.99,
  patience: 5,
  earlyStop: 25,
  screenAbove: 16,
  screenShare: 1 / 3,
  refineCount: 6,
  coveredSteps: 100,
  restarts: 2,
  restartAccept: 0.75,
};

/** One candidate target's reversed trigger. */
export interface ReversedTrigger {
  target: number;
  /** L1 norm of the smallest mask that reached the success target (or of the last mask if none did). */
  norm: number;
  reached: boolean;
  /** Success of that mask on its rows. */
  success: number;
  steps: number;
  refined: boolean;
  /** Its optimisation ended on its own (early stop or its step count), not by the budget. */
  finished: boolean;
  /** Its norm at the end of the screening phase (two-phase runs above `screenAbove` classes), else null. */
  screenNorm: number | null;
  /** The best norm a restart from a fresh start reached (Infinity if it never reached), or null if none ran. */
  restartNorm: number | null;
  mask: Float32Array;
  pattern: Float32Array;
}

export interface TriggerResult {
  triggers: ReversedTrigger[];
  steps: number;
  stoppedBy: StopReason | 'converged' | 'steps';
}

interface Track {
  target: number;
  cost: number;
  up: number;
  down: number;
  best: number;
  bestSuccess: number;
  reached: boolean;
  lastImprovement: number;
  steps: number;
  done: boolean;
  refined: boolean;
  finished: boolean;
  screenNorm: number | null;
  restartNorm: number | null;
  mask: Float32Array;
  pattern: Float32Array;
}

/** Chooses, per target, `count` D_rev images of other classes, cycling through the classes. */
function rowsFor(target: number, rev: ImageBatch, count: number, rng: Rng): number[] {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < rev.count; i++) {
    const l = rev.labels[i]!;
    if (l === target) continue;
    if (!byClass.has(l)) byClass.set(l, []);
    byClass.get(l)!.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  rng.shuffle(classes);
  for (const c of classes) rng.shuffle(byClass.get(c)!);
  const out: number[] = [];
  for (let round = 0; out.length < count && classes.length > 0; round++) {
    let any = false;
    for (const c of classes) {
      const list = byClass.get(c)!;
      if (round < list.length && out.length < count) {
        out.push(list[round]!);
        any = true;
      }
    }
    if (!any) break;
  }
  return out;
}

/**
 * Neural Cleanse for every candidate target at once: rows = targets × images, one mask and pattern per
 * target, each with its own cost λ on the mask's L1 norm, adjusted by Neural Cleanse's schedule.
 */
export function reverseTriggers(
  info: ModelInfo,
  rev: ImageBatch,
  range: [number, number],
  cfg: TriggerConfig,
  rng: Rng,
  stage: Stage,
  scope: { targets?: number[]; masks?: Pick<RunOptions, 'masks' | 'inputMasks'>; rowsPerPass?: number } = {},
): TriggerResult {
  const K = info.classes;
  const [h, w, c] = info.shape;
  const P = Math.min(cfg.imagesPerTarget, rev.count - Math.ceil(rev.count / K));
  const targets = scope.targets ?? Array.from({ length: K }, (_, t) => t);
  /** A target's optimisation state at the start of a run: its first, or a restart. */
  const freshRun = () => ({ cost: cfg.initialCost, up: 0, down: 0, best: Infinity, bestSuccess: 0, reached: false, lastImprovement: 0, steps: 0, done: false });
  const tracks: Track[] = targets.map((t) => ({
    target: t,
    ...freshRun(),
    refined: false,
    finished: false,
    screenNorm: null,
    restartNorm: null,
    mask: new Float32Array(h * w),
    pattern: new Float32Array(h * w * c),
  }));
  const rows = new Map(tracks.map((t) => [t.target, rowsFor(t.target, rev, P, rng)]));
  const initMask = () => Float32Array.from({ length: h * w }, () => rng.normal() * 0.1);
  const initPattern = () => Float32Array.from({ length: h * w * c }, () => rng.normal() * 0.5);
  const zMask = new Map<number, Float32Array>(tracks.map((t) => [t.target, initMask()]));
  const zPattern = new Map<number, Float32Array>(tracks.map((t) => [t.target, initPattern()]));

  const twoPhase = tracks.length > cfg.screenAbove;
  const screenSteps = Math.round(cfg.maxSteps * cfg.screenShare);
  let totalSteps = 0;
  let stoppedBy: TriggerResult['stoppedBy'];

  const runPhase = (phase: Track[], rowsPerTarget: number, maxSteps: number, phaseStage: Stage): StopReason | 'steps' | 'converged' => {
    const px = h * w * c;
    let active = phase;
    const xData = new Float32Array(active.length * rowsPerTarget * px);
    active.forEach((t, i) => rows.get(t.target)!.slice(0, rowsPerTarget).forEach((r, j) => xData.set(rev.images.subarray(r * px, (r + 1) * px), (i * rowsPerTarget + j) * px)));
    let X: tf.Tensor = tf.tensor5d(xData, [active.length, rowsPerTarget, h, w, c]);
    let targetOneHot: tf.Tensor = tf.tidy(() => {
      const ids = tf.tensor2d(Int32Array.from(active.flatMap((t) => Array<number>(rowsPerTarget).fill(t.target))), [active.length, rowsPerTarget], 'int32');
      return tf.oneHot(ids, K);
    });
    const zm0 = variableFrom(tf.tensor5d(Float32Array.from(active.flatMap((t) => [...zMask.get(t.target)!])), [active.length, 1, h, w, 1]));
    const zp0 = variableFrom(tf.tensor5d(Float32Array.from(active.flatMap((t) => [...zPattern.get(t.target)!])), [active.length, 1, h, w, c]));
    const opt = new RowAdam([zm0, zp0], cfg.learningRate, 0.5, 0.9);
    /** Keeps each listed target's latest free variables, for a later phase to go on from. */
    const saveZ = (which: Track[]) => {
      const [zm, zp] = opt.vars as [tf.Variable, tf.Variable];
      const zmData = zm.dataSync() as Float32Array;
      const zpData = zp.dataSync() as Float32Array;
      active.forEach((t, i) => {
        if (!which.includes(t)) return;
        zMask.set(t.target, zmData.slice(i * h * w, (i + 1) * h * w));
        zPattern.set(t.target, zpData.slice(i * px, (i + 1) * px));
      });
    };
    let result: StopReason | 'steps' | 'converged' = 'steps';
    for (let step = 0; step < maxSteps; step++) {
      const T = active.length;
      const stepCost = 3 * T * rowsPerTarget;
      const stop = phaseStage.exhausted() ?? (phaseStage.fits(stepCost) ? null : 'evaluations');
      if (stop) {
        result = stop;
        break;
      }
      if (active.every((t) => t.done)) {
        result = 'converged';
        break;
      }
      const [zm, zp] = opt.vars as [tf.Variable, tf.Variable];
      // Targets are independent (each has its own mask and pattern), so the step's gradient is the sum of
      // per-group gradients: groups of targets bound the activations alive at once to the memory budget.
      const perPass = Math.max(1, Math.floor((scope.rowsPerPass ?? Infinity) / rowsPerTarget));
      const hitParts: tf.Tensor[] = [];
      const normParts: tf.Tensor[] = [];
      groupedStep(opt, [zm, zp], T, perPass, (a, n) => {
        const costs = tf.tensor1d(Float32Array.from(active.slice(a, a + n).map((t) => t.cost)));
        const m = tf.sigmoid(tf.slice(zm, [a, 0, 0, 0, 0], [n, -1, -1, -1, -1]));
        const p = tf.add(range[0], tf.mul(range[1] - range[0], tf.sigmoid(tf.slice(zp, [a, 0, 0, 0, 0], [n, -1, -1, -1, -1]))));
        const x = tf.slice(X, [a, 0, 0, 0, 0], [n, -1, -1, -1, -1]);
        const onehot = tf.reshape(tf.slice(targetOneHot, [a, 0, 0], [n, -1, -1]), [n * rowsPerTarget, K]);
        const stamped = tf.reshape(tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(m, p)), [n * rowsPerTarget, h, w, c]);
        const lp = logProbs(info, info.graph.run(stamped, scope.masks ?? {}));
        const picked = tf.sum(tf.mul(lp, onehot), 1);
        const ce = tf.neg(tf.mean(tf.reshape(picked, [n, rowsPerTarget]), 1));
        const l1 = tf.sum(tf.reshape(m, [n, h * w]), 1);
        hitParts.push(tf.keep(tf.reshape(tf.cast(tf.equal(tf.argMax(lp, 1), tf.argMax(onehot, 1)), 'float32'), [n, rowsPerTarget])));
        normParts.push(tf.keep(l1));
        return tf.sum(tf.add(ce, tf.mul(costs, l1))) as tf.Scalar;
      });
      const hits = tf.concat(hitParts);
      const norms = tf.concat(normParts);
      tf.dispose([...hitParts, ...normParts]);
      phaseStage.spend(stepCost);
      totalSteps++;
      const success = readAndDispose(tf.tidy(() => tf.mean(hits, 1)));
      const normValues = readAndDispose(norms);
      hits.dispose();
      let needMasks = false;
      active.forEach((t, i) => {
        t.steps++;
        const s = success[i]!;
        const n = normValues[i]!;
        if (s >= cfg.successTarget) {
          t.up++;
          t.down = 0;
          if (n < t.best * 0.99) t.lastImprovement = t.steps;
          if (n < t.best) {
            t.best = n;
            t.bestSuccess = s;
            t.reached = true;
            needMasks = true;
          }
        } else {
          t.down++;
          t.up = 0;
        }
        if (t.up >= cfg.patience) {
          t.cost *= 2;
          t.up = 0;
        } else if (t.down >= cfg.patience) {
          t.cost /= 2;
          t.down = 0;
        }
        if (!t.reached) {
          t.best = n;
          t.bestSuccess = Math.max(t.bestSuccess, s);
        }
        if (t.reached && t.steps - t.lastImprovement > cfg.earlyStop) t.done = true;
      });
      if (needMasks || step === maxSteps - 1) snapshot(active, opt.vars[0]!, opt.vars[1]!, success, normValues, range, true);
      // Finished targets leave the batch, so later steps cost only what is still running.
      const finished = active.filter((t) => t.done);
      if (finished.length > 0 && finished.length < active.length) {
        saveZ(finished);
        const keep = active.flatMap((t, i) => (t.done ? [] : [i]));
        const idx = tf.tensor1d(Int32Array.from(keep), 'int32');
        const nextX = tf.gather(X, idx);
        const nextOneHot = tf.gather(targetOneHot, idx);
        tf.dispose([idx, X, targetOneHot]);
        X = nextX;
        targetOneHot = nextOneHot;
        opt.keepRows(keep);
        active = keep.map((i) => active[i]!);
      }
    }
    snapshot(active, opt.vars[0]!, opt.vars[1]!, null, null, range, false);
    saveZ(active);
    tf.dispose([X, targetOneHot]);
    opt.dispose();
    for (const t of phase) t.finished = t.done || (result !== 'time' && result !== 'evaluations');
    return result;
  };

  /** Keeps, per target, the mask and pattern of its best step so far (or its latest if never reached). */
  const snapshot = (active: Track[], zm: tf.Variable, zp: tf.Variable, success: ArrayLike<number> | null, norms: ArrayLike<number> | null, r: [number, number], onlyImproved: boolean) => {
    const m = readAndDispose(tf.tidy(() => tf.sigmoid(zm))) as Float32Array;
    const p = readAndDispose(tf.tidy(() => tf.add(r[0], tf.mul(r[1] - r[0], tf.sigmoid(zp))))) as Float32Array;
    active.forEach((t, i) => {
      const improved = success !== null && norms !== null && success[i]! >= cfg.successTarget && norms[i]! <= t.best;
      if (onlyImproved && !improved) return;
      if (!onlyImproved && t.reached) return;
      t.mask = m.slice(i * h * w, (i + 1) * h * w);
      t.pattern = p.slice(i * h * w * c, (i + 1) * h * w * c);
    });
  };

  /**
   * Runs the `count` smallest reached masks again from fresh random variables on the same rows and keeps a
   * restart only where it is clearly smaller. The restart is extra work: a budget that stops it leaves the
   * first runs, which finished, as they were.
   */
  const restart = (count: number) => {
    const order = tracks.filter((t) => t.reached).sort((a, b) => a.best - b.best || a.target - b.target).slice(0, count);
    const first = new Map(order.map((t) => [t.target, { ...t }]));
    for (const t of order) {
      Object.assign(t, freshRun());
      zMask.set(t.target, initMask());
      zPattern.set(t.target, initPattern());
    }
    runPhase(order, P, cfg.maxSteps, stage);
    for (const t of order) {
      const f = first.get(t.target)!;
      const again = t.reached ? t.best : Infinity;
      const steps = f.steps + t.steps;
      if (!(again <= cfg.restartAccept * f.best)) Object.assign(t, f);
      Object.assign(t, { restartNorm: again, steps, finished: f.finished });
    }
  };

  if (!twoPhase) {
    stoppedBy = runPhase(tracks, P, cfg.maxSteps, stage);
  } else {
    const screenRows = Math.max(2, Math.floor(P / 4));
    const r1 = runPhase(tracks, screenRows, screenSteps, stage);
    stoppedBy = r1;
    if (r1 !== 'time' && r1 !== 'evaluations') {
      for (const t of tracks) t.screenNorm = t.best;
      const order = [...tracks].sort((a, b) => a.best - b.best).slice(0, cfg.refineCount);
      for (const t of order) {
        t.done = false;
        t.refined = true;
        t.lastImprovement = t.steps;
      }
      stoppedBy = runPhase(order, P, cfg.maxSteps - screenSteps, stage);
    }
  }
  if (cfg.restarts > 0 && stoppedBy !== 'time' && stoppedBy !== 'evaluations') restart(cfg.restarts);
  return {
    triggers: tracks.map((t) => ({
      target: t.target,
      norm: t.best,
      reached: t.reached,
      success: t.bestSuccess,
      steps: t.steps,
      refined: t.refined,
      finished: t.finished,
      screenNorm: t.screenNorm,
      restartNorm: t.restartNorm,
      mask: t.mask,
      pattern: t.pattern,
    })),
    steps: totalSteps,
    stoppedBy,
  };
}
