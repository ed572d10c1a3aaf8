import type { Stage, StopReason } from '../../budget.ts';
import type { Rng } from '../../util/rng.ts';

/** A cooperative game over `players`, scored many coalitions per call (rows of one batched pass). */
export interface CoalitionGame {
  readonly players: number;
  /** v(S) for each coalition (1 = player present). */
  evaluate(coalitions: Uint8Array[]): number[];
  /** Evaluations (full-forward row equivalents) that scoring `n` coalitions costs. */
  cost(n: number): number;
  /**
   * A cheap first-order estimate of each player's marginal at the full coalition, and what it cost: it
   * orders the first greedy walks and ranks players no random walk has reached yet.
   */
  firstOrder?(): { values: number[]; cost: number };
}

export interface ShapleyConfig {
  /** Stop walking a permutation once v drops below this: the backdoor is gone (ShapPruning's discarding threshold). */
  threshold: number;
  useThreshold: boolean;
  /** Share of uniformly random permutations; the rest follow the current estimates (ε-greedy). */
  epsilon: number;
  useGreedy: boolean;
  /** Coalitions per batched evaluation. */
  batch: number;
  maxPermutations: number;
  minPermutations: number;
  /** Most players in the top set whose stability ends sampling. */
  topK: number;
  /**
   * The top set is the shortest prefix of the ranking that holds this share of the summed values (at most
   * `topK` players): the few players carrying the backdoor, not the noise-level ones ranked after them,
   * whose order never settles. The sum is signed, so their noise cancels out. 1 gives the plain top-k.
   */
  cover: number;
  /** Permutations the top-k set must stay unchanged to count as converged. */
  stableFor: number;
}

export const SHAPLEY_DEFAULTS: ShapleyConfig = {
  threshold: 0.05,
  useThreshold: true,
  epsilon: 0.2,
  useGreedy: true,
  batch: 32,
  maxPermutations: 2000,
  minPermutations: 20,
  topK: 5,
  cover: 0.8,
  stableFor: 30,
};

export interface ShapleyResult {
  /** Estimated value of each player (mean marginal contribution over sampled permutations). */
  values: number[];
  permutations: number;
  /** Distinct coalitions scored. */
  coalitions: number;
  evaluations: number;
  converged: boolean;
  stoppedBy: StopReason | 'converged' | 'max-permutations';
  fullValue: number;
}

interface Walk {
  order: number[];
  greedy: boolean;
  /** Coalitions to score in its next pass: a greedy walk usually ends within two, so it starts with 2. */
  chunk: number;
  pos: number;
  coalition: Uint8Array;
  prev: number;
  done: boolean;
}

function key(c: Uint8Array): string {
  let s = '';
  for (let i = 0; i < c.length; i += 16) {
    let v = 0;
    for (let j = 0; j < 16 && i + j < c.length; j++) v |= c[i + j]! << j;
    s += String.fromCharCode(v);
  }
  return s;
}

/**
 * Players by decreasing random-walk estimate perturbed by its standard error; ties (players no random walk
 * has reached) go by the first-order prior, or at random without one. Ordering by the greedy walks' own
 * credit would let whichever of two near-equal players leads early take every greedy walk's credit and
 * the lead for good; with unbiased means and their noise, players not yet separated take turns.
 */
function greedyOrder(values: number[], stderr: number[], prior: number[] | null, rng: Rng): number[] {
  const key = values.map((v, i) => v + rng.normal() * stderr[i]!);
  const tie = prior ?? values.map(() => -rng.next());
  return values.map((_, i) => i).sort((a, b) => key[b]! - key[a]! || tie[b]! - tie[a]!);
}

function topSet(values: number[], k: number, needed: number): string {
  const ranked = values.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const top: number[] = [];
  let held = 0;
  for (const [v, i] of ranked) {
    if (top.length >= k || (top.length > 0 && held >= needed)) break;
    top.push(i);
    held += v;
  }
  return top.sort((a, b) => a - b).join(',');
}

/**
 * Monte Carlo permutation Shapley values for removing players from the full set, with ShapPruning's two
 * accelerations: the discarding threshold (truncate a walk once the value is gone) and ε-greedy orders
 * (walk the current best estimates first, so walks reach the threshold in few steps). Many walks advance
 * together so each pass scores a full batch of coalitions; scored coalitions are cached.
 */
export function estimateShapley(
  game: CoalitionGame,
  cfg: ShapleyConfig,
  rng: Rng,
  stage: Stage,
  /** Sees the estimates after every group of walks (the benchmark traces convergence with it). */
  trace?: (values: number[], permutations: number, evaluations: number) => void,
): ShapleyResult {
  const n = game.players;
  const sums = new Float64Array(n);
  // Marginals from uniformly random walks only: unbiased, so their spread says which estimates are
  // not yet separated (the greedy walks' own marginals are biased toward whoever leads).
  const randomSums = new Float64Array(n);
  const randomSquares = new Float64Array(n);
  let randomWalks = 0;
  const cache = new Map<string, number>();
  let evaluations = 0;
  const score = (coalitions: Uint8Array[]): void => {
    const fresh: Uint8Array[] = [];
    const seen = new Set<string>();
    for (const c of coalitions) {
      const k = key(c);
      if (!cache.has(k) && !seen.has(k)) {
        seen.add(k);
        fresh.push(c);
      }
    }
    for (let i = 0; i < fresh.length; i += cfg.batch) {
      const part = fresh.slice(i, i + cfg.batch);
      const values = game.evaluate(part);
      const cost = game.cost(part.length);
      stage.spend(cost);
      evaluations += cost;
      part.forEach((c, j) => cache.set(key(c), values[j]!));
    }
  };
  const full = new Uint8Array(n).fill(1);
  score([full]);
  const fullValue = cache.get(key(full))!;
  let prior: number[] | null = null;
  if (cfg.useGreedy && game.firstOrder) {
    const first = game.firstOrder();
    stage.spend(first.cost);
    evaluations += first.cost;
    prior = first.values;
  }
  let permutations = 0;
  let stable = 0;
  let lastTop = '';
  let stoppedBy: ShapleyResult['stoppedBy'] = 'max-permutations';
  const current = () => Array.from(sums, (s) => (permutations > 0 ? s / permutations : 0));
  const chunk = cfg.useThreshold ? 4 : n;
  const firstChunk = (greedy: boolean) => (cfg.useThreshold ? (greedy ? 2 : 4) : n);

  while (permutations < cfg.maxPermutations) {
    const stop = stage.exhausted();
    if (stop) {
      stoppedBy = stop;
      break;
    }
    // A group of walks sized so their next chunks fill about one batch.
    // Without a prior the first walk goes alone: with nothing to follow, the group's greedy walks would be
    // random walks that do not feed the spread, while one walk's marginals already order the next group.
    const group =
      permutations === 0 && cfg.useGreedy && prior === null
        ? 1
        : Math.max(1, Math.min(cfg.maxPermutations - permutations, Math.floor(cfg.batch / Math.min(chunk, n)) || 1));
    if (!stage.fits(game.cost(Math.min(cfg.batch, group * chunk)))) {
      stoppedBy = 'evaluations';
      break;
    }
    // Greedy walks follow the random walks' means, perturbed by their standard error so that players not
    // yet separated take turns at the front.
    const randomMeans = Array.from(randomSums, (s) => (randomWalks > 0 ? s / randomWalks : 0));
    const stderr = randomMeans.map((mean, i) =>
      randomWalks < 2 ? 0 : Math.sqrt(Math.max(0, randomSquares[i]! / randomWalks - mean * mean) / randomWalks),
    );
    const walks: Walk[] = Array.from({ length: group }, () => {
      // With a prior the first group only follows it: exploration starts once there is a ranking to test.
      const greedy =
        cfg.useGreedy && (randomWalks > 0 || prior !== null) && (rng.next() >= cfg.epsilon || (prior !== null && permutations === 0));
      if (!greedy) randomWalks++;
      return {
        order: greedy ? greedyOrder(randomMeans, stderr, prior, rng) : rng.permutation(n),
        greedy,
        chunk: firstChunk(greedy),
        pos: 0,
        coalition: full.slice(),
        prev: fullValue,
        done: false,
      };
    });
    while (walks.some((w) => !w.done)) {
      const pending: Uint8Array[] = [];
      for (const w of walks) {
        if (w.done) continue;
        const c = w.coalition.slice();
        for (let s = 0; s < w.chunk && w.pos + s < n; s++) {
          c[w.order[w.pos + s]!] = 0;
          pending.push(c.slice());
        }
      }
      score(pending);
      for (const w of walks) {
        if (w.done) continue;
        for (let s = 0; s < w.chunk && w.pos < n; s++) {
          const player = w.order[w.pos]!;
          w.coalition[player] = 0;
          const v = cache.get(key(w.coalition))!;
          sums[player]! += w.prev - v;
          if (!w.greedy) {
            randomSums[player]! += w.prev - v;
            randomSquares[player]! += (w.prev - v) ** 2;
          }
          w.prev = v;
          w.pos++;
          if (cfg.useThreshold && v < cfg.threshold) {
            w.done = true;
            break;
          }
        }
        if (w.pos >= n) w.done = true;
        if (w.greedy) w.chunk = Math.min(4, w.chunk * 2);
      }
    }
    permutations += group;
    const values = current();
    trace?.(values, permutations, evaluations);
    const top = topSet(values, cfg.topK, cfg.cover >= 1 ? Infinity : cfg.cover * values.reduce((a, v) => a + v, 0));
    stable = top === lastTop ? stable + group : 0;
    lastTop = top;
    // Convergence is the usual end: the ranking stable for stableFor permutations after minPermutations.
    const towardsStable = Math.min(permutations / cfg.minPermutations, stable / cfg.stableFor);
    stage.tick(
      Math.max(permutations / cfg.maxPermutations, towardsStable),
      `${permutations} permutations, ranking stable for ${Math.min(stable, cfg.stableFor)}/${cfg.stableFor}`,
    );
    if (permutations >= cfg.minPermutations && stable >= cfg.stableFor) {
      stoppedBy = 'converged';
      break;
    }
  }
  return {
    values: current(),
    permutations,
    coalitions: cache.size,
    evaluations,
    converged: stoppedBy === 'converged',
    stoppedBy,
    fullValue,
  };
}
