import * as tf from '@tensorflow/tfjs-core';
import type { Stage, StopReason } from '../../budget.ts';
import { logProbs, type ModelInfo } from '../../model/model-info.ts';
import { groupedStep } from '../../tfjs/grouped-step.ts';
import { RowAdam } from '../../tfjs/row-adam.ts';
import { readAndDispose, variableFrom } from '../../tfjs/tensors.ts';
import type { Rng } from '../../util/rng.ts';
import type { ImageBatch } from '../synthesis/synth.ts';
import { freshSchedule, scheduleStep, type ScheduleState } from './cost-schedule.ts';
import type { ReversedTrigger, ReverseScope, TriggerConfig, TriggerResult } from './reverse.ts';

/** One candidate target: its schedule state and what the result reports of it (the best mask and pattern so far). */
export interface Track
  extends
    ScheduleState,
    Pick<ReversedTrigger, 'target' | 'source' | 'refined' | 'finished' | 'screenNorm' | 'restartNorm' | 'mask' | 'pattern'> {
  /** Its index among the search's tracks: its rows and free variables are kept under it. */
  id: number;
}

type PhaseEnd = StopReason | 'steps' | 'converged';

function countOf(batch: ImageBatch, label: number): number {
  let n = 0;
  for (let i = 0; i < batch.count; i++) if (batch.labels[i] === label) n++;
  return n;
}

/** What a search works on: fixed for its whole run. */
interface Setting {
  info: ModelInfo;
  rev: ImageBatch;
  range: [number, number];
  cfg: TriggerConfig;
  scope: ReverseScope;
}

/**
 * Per target, the rows it optimises on and its free variables (the mask and pattern before the sigmoid),
 * which a later phase or a restart goes on from.
 */
interface TargetData {
  rows: number[];
  zMask: Float32Array;
  zPattern: Float32Array;
}

/**
 * Chooses, per target, `count` D_rev images of other classes (of `source` alone when it is set), cycling
 * through the classes.
 */
function rowsFor(target: number, source: number | null, rev: ImageBatch, count: number, rng: Rng): number[] {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < rev.count; i++) {
    const l = rev.labels[i]!;
    if (l === target || (source !== null && l !== source)) continue;
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
 * The trigger search's state: every target's track, the rows it optimises on, and the free variables
 * (pre-sigmoid mask and pattern) a later phase or a restart goes on from. Phases run some of the tracks
 * batched; `result` reads the tracks out.
 */
export class TriggerSearch {
  readonly tracks: Track[];
  /** Images per target of a full phase. */
  readonly rowsPerTarget: number;
  private readonly setting: Setting;
  private readonly data = new Map<number, TargetData>();
  private steps = 0;

  constructor(
    info: ModelInfo,
    rev: ImageBatch,
    range: [number, number],
    private readonly cfg: TriggerConfig,
    private readonly rng: Rng,
    scope: ReverseScope,
  ) {
    this.setting = { info, rev, range, cfg, scope };
    const [h, w, c] = info.shape;
    const K = info.classes;
    const pairs = scope.pairs ?? (scope.targets ?? Array.from({ length: K }, (_, t) => t)).map((target) => ({ target, source: null }));
    // A pair's rows are its source's images only: as many as the smallest source class has.
    const perSource = scope.pairs ? Math.min(...scope.pairs.map((p) => countOf(rev, p.source))) : rev.count - Math.ceil(rev.count / K);
    this.rowsPerTarget = Math.min(cfg.imagesPerTarget, perSource);
    if (scope.pairs && !(this.rowsPerTarget > 0)) throw new Error('a pairwise trigger reverse needs D_rev images of every source class');
    this.tracks = pairs.map(({ target, source }, id) => ({
      id,
      target,
      source,
      ...freshSchedule(cfg.initialCost),
      refined: false,
      finished: false,
      screenNorm: null,
      restartNorm: null,
      mask: new Float32Array(h * w),
      pattern: new Float32Array(h * w * c),
    }));
    // Draw order matters for --seed: every target's rows, then every mask, then every pattern.
    const rows = this.tracks.map((t) => rowsFor(t.target, t.source, rev, this.rowsPerTarget, rng));
    const masks = this.tracks.map(() => this.initMask());
    const patterns = this.tracks.map(() => this.initPattern());
    this.tracks.forEach((t, i) => this.data.set(t.id, { rows: rows[i]!, zMask: masks[i]!, zPattern: patterns[i]! }));
  }

  private initMask(): Float32Array {
    const [h, w] = this.setting.info.shape;
    return Float32Array.from({ length: h * w }, () => this.rng.normal() * 0.1);
  }

  private initPattern(): Float32Array {
    const [h, w, c] = this.setting.info.shape;
    return Float32Array.from({ length: h * w * c }, () => this.rng.normal() * 0.5);
  }

  /**
   * Optimises `phase`'s tracks together, `rowsPerTarget` images each, for at most `maxSteps` steps within
   * `stage`. Each track's best mask and its free variables are kept on it for later phases.
   */
  /**
   * `what` names the phase's targets in progress ticks ("classes screened"), and `span` is the part of the
   * whole search this phase stands for, so the ticks of successive phases add up to one count.
   */
  run(phase: Track[], rowsPerTarget: number, maxSteps: number, stage: Stage, what = 'classes', span: [number, number] = [0, 1]): PhaseEnd {
    const batch = new PhaseBatch(this.setting, this.data, phase, rowsPerTarget);
    let result: PhaseEnd = 'steps';
    for (let step = 0; step < maxSteps; step++) {
      const stepCost = 3 * batch.active.length * rowsPerTarget;
      const stop = stage.exhausted() ?? (stage.fits(stepCost) ? null : 'evaluations');
      if (stop) {
        result = stop;
        break;
      }
      if (batch.active.every((t) => t.done)) {
        result = 'converged';
        break;
      }
      const { success, norms } = batch.step();
      stage.spend(stepCost);
      this.steps++;
      let improved = false;
      const keep: boolean[] = [];
      batch.active.forEach((t, i) => {
        const s = scheduleStep(t, success[i]!, norms[i]!, this.cfg);
        Object.assign(t, s.next);
        improved ||= s.improved;
        keep.push(s.keep);
      });
      if (improved || step === maxSteps - 1) batch.snapshot((_, i) => keep[i]!);
      // Finished targets leave the batch, so later steps cost only what is still running.
      batch.dropFinished();
      const settled = phase.filter((t) => t.done).length;
      const done = Math.max((step + 1) / maxSteps, settled / phase.length);
      stage.tick(span[0] + (span[1] - span[0]) * done, `${settled}/${phase.length} ${what} settled, step ${step + 1}`);
    }
    batch.snapshot((t) => !t.reached);
    batch.close();
    for (const t of phase) t.finished = t.done || (result !== 'time' && result !== 'evaluations');
    return result;
  }

  /**
   * Runs the `count` smallest reached masks again from fresh random variables on the same rows and keeps a
   * restart only where it is clearly smaller. The restart is extra work: a budget that stops it leaves the
   * first runs, which finished, as they were.
   */
  restart(count: number, stage: Stage, span: [number, number] = [0, 1]): void {
    const order = this.tracks
      .filter((t) => t.reached)
      .sort((a, b) => a.best - b.best || a.target - b.target || a.id - b.id)
      .slice(0, count);
    const first = new Map(order.map((t) => [t.id, { ...t }]));
    for (const t of order) {
      Object.assign(t, freshSchedule(this.cfg.initialCost));
      const d = this.data.get(t.id)!;
      d.zMask = this.initMask();
      d.zPattern = this.initPattern();
    }
    this.run(order, this.rowsPerTarget, this.cfg.maxSteps, stage, 'smallest rerun from fresh starts', span);
    for (const t of order) {
      const f = first.get(t.id)!;
      const again = t.reached ? t.best : Infinity;
      const steps = f.steps + t.steps;
      if (!(again <= this.cfg.restartAccept * f.best)) Object.assign(t, f);
      Object.assign(t, { restartNorm: again, steps, finished: f.finished });
    }
  }

  result(stoppedBy: TriggerResult['stoppedBy']): TriggerResult {
    return {
      triggers: this.tracks.map((t) => ({
        target: t.target,
        source: t.source,
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
      steps: this.steps,
      stoppedBy,
    };
  }
}

/**
 * The tensors of one phase: the stamped rows' base images, their targets, the free variables of the active
 * tracks (one row each) and their optimiser. Tracks that finish leave it together with their rows.
 */
class PhaseBatch {
  active: Track[];
  private X: tf.Tensor;
  private targetOneHot: tf.Tensor;
  private readonly opt: RowAdam;

  constructor(
    private readonly setting: Setting,
    private readonly data: ReadonlyMap<number, TargetData>,
    phase: Track[],
    private readonly rowsPerTarget: number,
  ) {
    const { info, rev, cfg } = setting;
    const [h, w, c] = info.shape;
    const px = h * w * c;
    this.active = phase;
    const xData = new Float32Array(phase.length * rowsPerTarget * px);
    phase.forEach((t, i) =>
      data
        .get(t.id)!
        .rows.slice(0, rowsPerTarget)
        .forEach((r, j) => xData.set(rev.images.subarray(r * px, (r + 1) * px), (i * rowsPerTarget + j) * px)),
    );
    this.X = tf.tensor5d(xData, [phase.length, rowsPerTarget, h, w, c]);
    this.targetOneHot = tf.tidy(() => {
      const ids = tf.tensor2d(
        Int32Array.from(phase.flatMap((t) => Array<number>(rowsPerTarget).fill(t.target))),
        [phase.length, rowsPerTarget],
        'int32',
      );
      return tf.oneHot(ids, info.classes);
    });
    const zm = variableFrom(tf.tensor5d(Float32Array.from(phase.flatMap((t) => [...data.get(t.id)!.zMask])), [phase.length, 1, h, w, 1]));
    const zp = variableFrom(
      tf.tensor5d(Float32Array.from(phase.flatMap((t) => [...data.get(t.id)!.zPattern])), [phase.length, 1, h, w, c]),
    );
    this.opt = new RowAdam([zm, zp], cfg.learningRate, 0.5, 0.9);
  }

  private get vars(): [tf.Variable, tf.Variable] {
    return this.opt.vars as [tf.Variable, tf.Variable];
  }

  /**
   * One Adam step of every active track, in memory-sized groups of targets: targets are independent (each has
   * its own mask and pattern), so the step's gradient is the sum of per-group gradients. Returns each
   * track's attack success on its rows and its mask's L1 norm at this step.
   */
  step(): { success: ArrayLike<number>; norms: ArrayLike<number> } {
    const { info, range, scope } = this.setting;
    const [h, w, c] = info.shape;
    const K = info.classes;
    const R = this.rowsPerTarget;
    const [zm, zp] = this.vars;
    const T = this.active.length;
    const perPass = Math.max(1, Math.floor((scope.rowsPerPass ?? Infinity) / R));
    const hitParts: tf.Tensor[] = [];
    const normParts: tf.Tensor[] = [];
    groupedStep(this.opt, [zm, zp], T, perPass, (a, n) => {
      const costs = tf.tensor1d(Float32Array.from(this.active.slice(a, a + n).map((t) => t.cost)));
      const m = tf.sigmoid(tf.slice(zm, [a, 0, 0, 0, 0], [n, -1, -1, -1, -1]));
      const p = tf.add(range[0], tf.mul(range[1] - range[0], tf.sigmoid(tf.slice(zp, [a, 0, 0, 0, 0], [n, -1, -1, -1, -1]))));
      const x = tf.slice(this.X, [a, 0, 0, 0, 0], [n, -1, -1, -1, -1]);
      const onehot = tf.reshape(tf.slice(this.targetOneHot, [a, 0, 0], [n, -1, -1]), [n * R, K]);
      const stamped = tf.reshape(tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(m, p)), [n * R, h, w, c]);
      const lp = logProbs(info.graph.run(stamped, scope.masks ?? {}));
      const picked = tf.sum(tf.mul(lp, onehot), 1);
      const ce = tf.neg(tf.mean(tf.reshape(picked, [n, R]), 1));
      const l1 = tf.sum(tf.reshape(m, [n, h * w]), 1);
      hitParts.push(tf.keep(tf.reshape(tf.cast(tf.equal(tf.argMax(lp, 1), tf.argMax(onehot, 1)), 'float32'), [n, R])));
      normParts.push(tf.keep(l1));
      return tf.sum(tf.add(ce, tf.mul(costs, l1))) as tf.Scalar;
    });
    const hits = tf.concat(hitParts);
    const norms = tf.concat(normParts);
    tf.dispose([...hitParts, ...normParts]);
    const success = readAndDispose(tf.tidy(() => tf.mean(hits, 1)));
    const normValues = readAndDispose(norms);
    hits.dispose();
    return { success, norms: normValues };
  }

  /** Copies the current mask and pattern onto each active track that `take` picks. */
  snapshot(take: (t: Track, i: number) => boolean): void {
    const { info, range } = this.setting;
    const [h, w, c] = info.shape;
    const [zm, zp] = this.vars;
    const m = readAndDispose(tf.tidy(() => tf.sigmoid(zm))) as Float32Array;
    const p = readAndDispose(tf.tidy(() => tf.add(range[0], tf.mul(range[1] - range[0], tf.sigmoid(zp))))) as Float32Array;
    this.active.forEach((t, i) => {
      if (!take(t, i)) return;
      t.mask = m.slice(i * h * w, (i + 1) * h * w);
      t.pattern = p.slice(i * h * w * c, (i + 1) * h * w * c);
    });
  }

  /** Keeps the listed active tracks' latest free variables, for a later phase to go on from. */
  private saveFreeVariables(which: Track[]): void {
    const [h, w, c] = this.setting.info.shape;
    const [zm, zp] = this.vars;
    const zmData = zm.dataSync() as Float32Array;
    const zpData = zp.dataSync() as Float32Array;
    this.active.forEach((t, i) => {
      if (!which.includes(t)) return;
      const d = this.data.get(t.id)!;
      d.zMask = zmData.slice(i * h * w, (i + 1) * h * w);
      d.zPattern = zpData.slice(i * h * w * c, (i + 1) * h * w * c);
    });
  }

  /** Finished tracks leave the batch with their rows and optimiser moments; the others go on unchanged. */
  dropFinished(): void {
    const finished = this.active.filter((t) => t.done);
    if (finished.length === 0 || finished.length === this.active.length) return;
    this.saveFreeVariables(finished);
    const keep = this.active.flatMap((t, i) => (t.done ? [] : [i]));
    const idx = tf.tensor1d(Int32Array.from(keep), 'int32');
    const nextX = tf.gather(this.X, idx);
    const nextOneHot = tf.gather(this.targetOneHot, idx);
    tf.dispose([idx, this.X, this.targetOneHot]);
    this.X = nextX;
    this.targetOneHot = nextOneHot;
    this.opt.keepRows(keep);
    this.active = keep.map((i) => this.active[i]!);
  }

  /** Saves every still-active track's free variables and frees the phase's tensors. */
  close(): void {
    this.saveFreeVariables(this.active);
    tf.dispose([this.X, this.targetOneHot]);
    this.opt.dispose();
  }
}
