import type { Graph } from '../../tfjs/graph.ts';
import type { ImageBatch } from '../synthesis/synth.ts';
import type { ReversedTrigger } from '../trigger/reverse.ts';
import { otherClassRows, stampReversed } from '../trigger/stamp.ts';
import { predict } from '../verification/verify.ts';
import { rowsOf } from '../../sample/sample.ts';
import { median } from './detect.ts';

/**
 * The all-to-all check (few-shot mode): a trigger reversed for every ordered source → target pair on trusted
 * images of the source, the cheapest mapping over them (cheapestMapping), and how far each mapped pair's
 * trigger carries the mapping to the other classes (mappingTransfer). Data-free it is not run: on synthetic
 * images the planted all-to-all trigger moves only 15–38% of them to their target, and the measured signals
 * of backdoored and clean models overlap there (docs/benchmarks.md).
 */
export interface AllToAllConfig {
  /** Bases per source class: the sample's used images the model calls that class, topped up with synthetic ones. */
  imagesPerSource: number;
  /**
   * Flagged when the mapped pairs' triggers carry the mapping at least this far: the mean over sources of
   * the median over the other classes of the share sent to their own mapped target (`allToAllScore`).
   */
  minScore: number;

  /**
   * The universality signal's bounds (universalTarget): a class whose pair triggers carry to the other
   * classes' images at least this median share…
   */
  minUniversal: number;
  /** … and at least this many times the next class's. */
  universalRatio: number;
}

export const ALL_TO_ALL_DEFAULTS: AllToAllConfig = { imagesPerSource: 8, minScore: 0.1, minUniversal: 0.15, universalRatio: 5 };

/**
 * The check's score: per source, the median over the other classes of the share its mapped trigger sends to
 * their own mapped target; then the mean over sources. The median, so that a trigger sending everything into
 * one class (an all-to-one backdoor's, whose target is some class's mapped target) does not count; the mean,
 * so that every source speaks, as each is one more pair an all-to-all trigger serves.
 */
export function allToAllScore(followsMedian: readonly number[]): number {
  return followsMedian.length === 0 ? 0 : followsMedian.reduce((sum, x) => sum + x, 0) / followsMedian.length;
}

/**
 * The mapping an all-to-all backdoor would be: one target per source, no two sources sharing one, none its own
 * class, chosen so the pair triggers are as cheap as possible relative to each source's typical pair. An
 * all-to-all trigger sends every class to its own target, so its pairs form such a mapping; a clean model's
 * cheapest pairs crowd into a few naturally easy targets, and forcing them apart costs it more. Relative to
 * the row's median, since some source classes are easier to move than others (a thin "1" against an "8").
 *
 * `norms[s][t]` is the pair's mask norm, `Infinity` where its search never reached success (ranked above every
 * finite pair); the diagonal is ignored. Returns the mapping and its mean log ratio to the row medians.
 */
export function cheapestMapping(norms: readonly (readonly number[])[]): { mapping: number[]; meanLogRatio: number } {
  const K = norms.length;
  const finite = norms.flatMap((row, s) => row.filter((v, t) => t !== s && Number.isFinite(v)));
  // A never-reached pair costs as the worst reached one doubled: worse than any, yet finite for the solver.
  const cap = finite.length > 0 ? 2 * Math.max(...finite) : 1;
  const log = norms.map((row, s) => row.map((v, t) => (t === s ? NaN : Math.log(Math.max(Number.isFinite(v) ? v : cap, 1e-9)))));
  const cost = log.map((row, s) => {
    const mid = median(row.filter((_, t) => t !== s));
    return row.map((v, t) => (t === s ? Infinity : v - mid));
  });
  const mapping = minCostAssignment(cost);
  return { mapping, meanLogRatio: mapping.reduce((sum, t, s) => sum + cost[s]![t]!, 0) / K };
}

/** Where one source's assigned pair trigger sends the images of the classes that are neither it nor its target. */
export interface PairTransfer {
  /** To their own class's assigned target: one trigger, a target per class, as an all-to-all trigger does. */
  follows: number;
  /**
   * The same share per class (NaN for the source and the pair's target), and its median over the classes:
   * an all-to-one trigger sends every class into its one target, which is also the assigned target of one
   * class, so the pooled share alone reads 1/(K−2) for it; the median asks that most classes follow.
   */
  followsByClass: number[];
  followsMedian: number;
  /** To this pair's target: a trigger that pushes everything into one (easy or planted) class. */
  toTarget: number;
  /** Left in their own class. */
  stays: number;
}

/**
 * Each source's assigned pair trigger stamped on every other class's images. An all-to-all backdoor is one
 * trigger the model reads with the source's features, so a trigger reversed for one pair is the planted one,
 * and it sends the other classes to *their* targets; a clean model's pair trigger is a perturbation fitted to
 * one source, which moves other classes nowhere or into its own target. Measured on the same images the
 * pairs were reversed on: the question is what the trigger does beyond its own source, not generalisation.
 */
export function mappingTransfer(
  graph: Graph,
  shape: [number, number, number],
  batch: ImageBatch,
  triggers: readonly ReversedTrigger[],
  mapping: readonly number[],
  passRows: number,
): PairTransfer[] {
  return mapping.map((target, source) => {
    const t = triggers.find((x) => x.source === source && x.target === target);
    if (t === undefined) throw new Error(`no pair trigger ${source} → ${target} to measure`);
    const rows = otherClassRows(batch, target);
    const got = predict(graph, stampReversed(batch, shape, t.mask, t.pattern, target), shape, passRows);
    const others = rows.map((r, j) => ({ label: batch.labels[r]!, got: got[j]! })).filter((x) => x.label !== source);
    const share = (f: (x: { label: number; got: number }) => boolean) =>
      others.length === 0 ? 0 : others.filter(f).length / others.length;
    const followsByClass = mapping.map((own, c) => {
      if (c === source || c === target) return NaN;
      const mine = others.filter((x) => x.label === c);
      return mine.length === 0 ? NaN : mine.filter((x) => x.got === own).length / mine.length;
    });
    const measured = followsByClass.filter((v) => !Number.isNaN(v));
    return {
      follows: share((x) => x.got === mapping[x.label]),
      followsByClass,
      followsMedian: measured.length === 0 ? 0 : median(measured),
      toTarget: share((x) => x.got === target),
      stays: share((x) => x.got === x.label),
    };
  });
}

/** How universally each class's pair triggers carry (see universality). */
export interface Universality {
  /** into[s][t]: pair s → t's trigger stamped on the images of every class but s and t, the share sent to t (NaN on the diagonal and for pairs not searched). */
  into: number[][];
  /** Per target: the median over its searched sources of `into[s][t]` (NaN for a target with none). */
  universal: number[];
}

/**
 * How far each pair trigger s → t carries beyond its source: stamped on the bases of every class but s and t,
 * the share the model sends to t. A planted all-to-one trigger is read the same way on any image, so a
 * trigger reversed from one source to its target works on every class; a clean model's pair trigger is a
 * perturbation fitted to its source. Per target, the median over sources: a trigger from one easy source
 * does not make a class universal. `triggers` may hold every pair or only those into one target.
 */
export function universality(
  graph: Graph,
  shape: [number, number, number],
  batch: ImageBatch,
  triggers: readonly ReversedTrigger[],
  classes: number,
  passRows: number,
): Universality {
  const into = Array.from({ length: classes }, () => new Array<number>(classes).fill(NaN));
  for (const t of triggers) {
    const rows = Array.from(batch.labels.keys()).filter((r) => batch.labels[r] !== t.source && batch.labels[r] !== t.target);
    const got = predict(graph, stampReversed(rowsOf(batch, rows), shape, t.mask, t.pattern, t.target), shape, passRows);
    into[t.source!]![t.target] = got.filter((p) => p === t.target).length / Math.max(1, got.length);
  }
  const universal = Array.from({ length: classes }, (_, t) => {
    const shares = into.flatMap((row, s) => (s === t || Number.isNaN(row[t]!) ? [] : [row[t]!]));
    return shares.length === 0 ? NaN : median(shares);
  });
  return { into, universal };
}

/**
 * The class the universality signal flags, or null: the one whose pair triggers carry furthest, when that
 * share is at least `minUniversal` and at least `universalRatio` times the next class's. Chosen on the
 * zoo's tuning half (docs/benchmarks.md): clean models reach high shares too (an easy class, up to 0.74 on a
 * Fashion GAP model), and one clean run reached 4.0 times its next class, so the bound is 5.
 */
export function universalTarget(universal: readonly number[], cfg: Pick<AllToAllConfig, 'minUniversal' | 'universalRatio'>): number | null {
  const order = universal.map((u, t) => ({ u: Number.isNaN(u) ? 0 : u, t })).sort((a, b) => b.u - a.u || a.t - b.t);
  const [top, next] = order;
  if (top === undefined || top.u < cfg.minUniversal) return null;
  return top.u >= cfg.universalRatio * (next?.u ?? 0) ? top.t : null;
}

/**
 * The Hungarian method (Kuhn–Munkres, O(K³)): the permutation minimising Σ cost[s][perm[s]] over a square
 * matrix. Infinite entries are never chosen while a finite assignment exists. Written here since the engine
 * takes no dependency beyond tfjs and the algorithm is forty lines; ties resolve to the lowest index, so the
 * answer is deterministic.
 */
export function minCostAssignment(cost: readonly (readonly number[])[]): number[] {
  const n = cost.length;
  const finite = cost.flat().filter(Number.isFinite);
  const big = finite.length > 0 ? (Math.max(...finite.map(Math.abs)) + 1) * (n + 1) : 1;
  const c = (i: number, j: number) => (Number.isFinite(cost[i - 1]![j - 1]!) ? cost[i - 1]![j - 1]! : big);
  // 1-based potentials u (rows), v (columns); p[j] the row assigned to column j, way[j] the path back.
  const u = new Float64Array(n + 1);
  const v = new Float64Array(n + 1);
  const p = new Int32Array(n + 1);
  const way = new Int32Array(n + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Float64Array(n + 1).fill(Infinity);
    const used = new Uint8Array(n + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = c(i0, j) - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]!] = u[p[j]!]! + delta;
          v[j] = v[j]! - delta;
        } else minv[j] = minv[j]! - delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const perm = new Array<number>(n).fill(-1);
  for (let j = 1; j <= n; j++) perm[p[j]! - 1] = j - 1;
  return perm;
}
