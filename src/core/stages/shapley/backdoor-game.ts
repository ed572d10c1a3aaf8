import * as tf from '@tensorflow/tfjs-core';
import type { RunOptions } from '../../tfjs/graph.ts';
import { probs, type ModelInfo } from '../../model/model-info.ts';
import type { PlayerSet } from '../players.ts';
import type { CoalitionGame } from './shapley.ts';
import { readAndDispose } from '../../tfjs/tensors.ts';

/**
 * Evaluates many player coalitions on a fixed image batch in one tail pass: the activations entering the
 * first player layer are computed once, tiled per coalition, masked, and only the rest of the network runs.
 */
export class TailEvaluator {
  private readonly cached: Map<number, tf.Tensor>;
  private readonly tailFraction: number;
  readonly rows: number;

  constructor(
    private readonly info: ModelInfo,
    readonly players: PlayerSet,
    images: Float32Array,
  ) {
    const [h, w, c] = info.shape;
    this.rows = images.length / (h * w * c);
    const x = tf.tensor4d(images, [this.rows, h, w, c]);
    this.cached = players.startsAtInput ? info.graph.prefixInput(x, players.firstStep) : info.graph.prefix(x, players.firstStep);
    x.dispose();
    // Channel players: the player layer's own computation is in the cache, only what follows runs per
    // coalition. Position players mask the layer's input, so the layer itself runs too.
    const tailMacs = info.stepMacs.slice(players.startsAtInput ? players.firstStep : players.firstStep + 1).reduce((a, b) => a + b, 0);
    this.tailFraction = tailMacs / info.totalMacs;
  }

  /** Cost of scoring `n` coalitions, in full-forward row equivalents. */
  cost(n: number): number {
    return n * this.rows * this.tailFraction;
  }

  /** Class probabilities, [coalitions·rows, K], coalition-major. */
  probabilities(coalitions: Uint8Array[]): tf.Tensor2D {
    return tf.tidy(() => {
      const R = coalitions.length;
      const tiled = new Map<number, tf.Tensor>();
      // R copies one after another. wasm's Tile is a plain loop, 25× slower here than a concat.
      for (const [id, v] of this.cached) tiled.set(id, R === 1 ? v : tf.concat(Array<tf.Tensor>(R).fill(v)));
      return probs(this.runTail(tiled, this.players.masks(coalitions, this.rows)));
    });
  }

  /**
   * d v / d p at `coalition` for v = mean probability of `target`: a first-order estimate of what removing
   * each present player takes from v, at the cost of one tail pass forward and back.
   */
  firstOrder(coalition: Uint8Array, target: number): Float32Array {
    const t = tf.tidy(() => {
      const p = tf.tensor1d(Float32Array.from(coalition));
      return tf.mul(tf.grad((q: tf.Tensor) => this.meanProbability(q as tf.Tensor1D, target))(p), p);
    });
    return readAndDispose(t) as Float32Array;
  }

  /** Mean probability of `target` with each player's output scaled by `presence` (1 = present, 0 = removed). */
  valueAt(presence: Float32Array, target: number): number {
    return readAndDispose(tf.tidy(() => this.meanProbability(tf.tensor1d(presence), target)))[0]!;
  }

  private meanProbability(presence: tf.Tensor1D, target: number): tf.Scalar {
    return tf.mean(tf.slice(probs(this.runTail(this.cached, this.players.masksOf(presence))), [0, target], [-1, 1]));
  }

  /** The network from the first player layer on, over `values` cached by the constructor's prefix. */
  private runTail(values: ReadonlyMap<number, tf.Tensor>, masks: Pick<RunOptions, 'masks' | 'inputMasks'>): tf.Tensor {
    const { graph } = this.info;
    return this.players.startsAtInput
      ? graph.tailFrom(values, this.players.firstStep, masks)
      : graph.tail(values, this.players.firstStep, masks);
  }

  dispose(): void {
    tf.dispose([...this.cached.values()]);
  }
}

/** Trigger-stamped images through the tail, and the class the backdoor sends them to. */
export interface StampedPart {
  tail: TailEvaluator;
  target: number;
}

/**
 * v(S): mean probability of the backdoor's target on trigger-stamped images with only S active. One part
 * for an all-to-one target; an all-to-all backdoor's game has a part per mapped pair (its trigger on the
 * source's images, aiming at the source's target), weighed by rows, so one estimate covers every pair.
 */
export class BackdoorGame implements CoalitionGame {
  private readonly weights: number[];

  /** `fixedOff`: players already pruned in an earlier round, absent from every coalition. */
  constructor(
    private readonly parts: readonly StampedPart[],
    private readonly fixedOff: readonly number[] = [],
  ) {
    if (parts.length === 0) throw new Error('a backdoor game needs at least one stamped part');
    const rows = parts.reduce((sum, p) => sum + p.tail.rows, 0);
    this.weights = parts.map((p) => p.tail.rows / rows);
  }

  get players(): number {
    return this.parts[0]!.tail.players.size;
  }

  cost(n: number): number {
    return this.parts.reduce((sum, p) => sum + p.tail.cost(n), 0);
  }

  firstOrder(): { values: number[]; cost: number } {
    const all = new Uint8Array(this.players).fill(1);
    for (const k of this.fixedOff) all[k] = 0;
    const values = new Array<number>(this.players).fill(0);
    this.parts.forEach((p, i) => p.tail.firstOrder(all, p.target).forEach((g, k) => (values[k] = values[k]! + this.weights[i]! * g)));
    // A backward pass costs about two forward passes.
    return { values, cost: this.cost(3) };
  }

  evaluate(coalitions: Uint8Array[]): number[] {
    const effective = coalitions.map((c) => {
      const e = c.slice();
      for (const k of this.fixedOff) e[k] = 0;
      return e;
    });
    const out = new Array<number>(coalitions.length).fill(0);
    this.parts.forEach((part, i) => {
      const t = tf.tidy(() => {
        const p = part.tail.probabilities(effective);
        const col = tf.slice(p, [0, part.target], [-1, 1]);
        return tf.mean(tf.reshape(col, [coalitions.length, part.tail.rows]), 1);
      });
      readAndDispose(t).forEach((v, j) => (out[j] = out[j]! + this.weights[i]! * v));
    });
    return out;
  }
}

/**
 * A game over some of another game's players (`subset`, indices there), every other player present: the
 * cells of a position that carries the backdoor, valued with the rest of the network in place. Splitting
 * only what the first estimate found keeps the game small; estimating every cell of every position would
 * cost the channels' count times as many players.
 */
export class SubGame implements CoalitionGame {
  constructor(
    private readonly game: CoalitionGame & Required<Pick<CoalitionGame, 'firstOrder'>>,
    private readonly subset: readonly number[],
  ) {}

  get players(): number {
    return this.subset.length;
  }

  cost(n: number): number {
    return this.game.cost(n);
  }

  firstOrder(): { values: number[]; cost: number } {
    const all = this.game.firstOrder();
    return { values: this.subset.map((k) => all.values[k]!), cost: all.cost };
  }

  evaluate(coalitions: Uint8Array[]): number[] {
    return this.game.evaluate(
      coalitions.map((c) => {
        const full = new Uint8Array(this.game.players).fill(1);
        this.subset.forEach((k, i) => (full[k] = c[i]!));
        return full;
      }),
    );
  }
}
