import * as tf from '@tensorflow/tfjs-core';
import type { RunOptions } from '../tfjs/graph.ts';
import type { ModelInfo } from '../model/model-info.ts';
import { ShapguardError } from '../errors.ts';

/**
 * One prunable unit. A channel player is an output channel of a Conv2D (or a unit of a Dense) layer. A
 * position player is one spatial position of the feature map that a Flatten feeds into a Dense layer: all
 * of that position's channels as the Dense layer's inputs. A localised trigger enters the classifier
 * through the positions it covers, however many channels carry it, so a patch backdoor that is spread
 * over channels can still sit in one position.
 */
export interface Player {
  layer: string;
  /** The output channel (channel players), else null. */
  channel: number | null;
  /** [row, column] in the flattened feature map (position players), else null. */
  position: [number, number] | null;
}

/** A player layer and what kind of players it gives. */
export interface PlayerLayer {
  layer: string;
  kind: 'channels' | 'positions';
}

/** How a player layer appears in reports and on the command line: "conv2", or "fc1:positions". */
export function playerLayerName(p: PlayerLayer): string {
  return p.kind === 'positions' ? `${p.layer}:positions` : p.layer;
}

/** A stable text key for a player ("conv2:5", "fc1@0,3"), for sets and messages. */
export function playerKey(p: Player): string {
  return p.position ? `${p.layer}@${p.position.join(',')}` : `${p.layer}:${p.channel}`;
}

interface Block {
  layer: string;
  kind: PlayerLayer['kind'];
  step: number;
  start: number;
  count: number;
  /** channels: the output's rank; positions: the [height, width, channels] grid behind the Flatten. */
  rank: number;
  grid: [number, number, number] | null;
}

/** The players of the chosen layers, in graph order, and where each layer's block starts. */
export class PlayerSet {
  readonly players: Player[] = [];
  readonly blocks: Block[] = [];

  constructor(info: ModelInfo, layers: PlayerLayer[]) {
    for (const { layer, kind } of layers) {
      const step = info.graph.stepOf(layer);
      if (kind === 'positions') {
        const grid = info.graph.flattenGrid(step);
        if (grid === null)
          throw new ShapguardError(
            'input',
            `--layers: "${layer}" is not a Dense layer fed by a Flatten of a feature map, so it has no position players`,
          );
        this.blocks.push({ layer, kind, step, start: this.players.length, count: grid[0] * grid[1], rank: 2, grid });
        for (let r = 0; r < grid[0]; r++) for (let c = 0; c < grid[1]; c++) this.players.push({ layer, channel: null, position: [r, c] });
      } else {
        const shape = info.graph.steps[step]!.layer.outputShape as number[];
        const channels = shape.at(-1)!;
        this.blocks.push({ layer, kind, step, start: this.players.length, count: channels, rank: shape.length, grid: null });
        for (let c = 0; c < channels; c++) this.players.push({ layer, channel: c, position: null });
      }
    }
    this.blocks.sort((a, b) => a.step - b.step || (a.kind === 'positions' ? -1 : 1));
  }

  /** Each position layer's [height, width, channels] grid, for writing the pruned weights. */
  get grids(): Map<string, [number, number, number]> {
    return new Map(this.blocks.filter((b) => b.grid !== null).map((b) => [b.layer, b.grid!]));
  }

  get size(): number {
    return this.players.length;
  }

  /** The step where evaluation can start from cached activations: the first player layer. */
  get firstStep(): number {
    return this.blocks[0]!.step;
  }

  /**
   * Whether evaluation starts before the first player layer (its input is masked: position players)
   * rather than after its own computation (its output is masked: channel players).
   */
  get startsAtInput(): boolean {
    return this.blocks.some((b) => b.step === this.firstStep && b.kind === 'positions');
  }

  /**
   * Masks for `coalitions`, each repeated for `rowsPer` consecutive rows (coalition-major): per channel
   * layer, shaped to broadcast over its pre-activation output; per position layer, over its flat input.
   */
  masks(coalitions: Uint8Array[], rowsPer: number): Pick<RunOptions, 'masks' | 'inputMasks'> {
    const masks = new Map<string, tf.Tensor>();
    const inputMasks = new Map<string, tf.Tensor>();
    for (const b of this.blocks) {
      const width = b.grid ? b.grid[0] * b.grid[1] * b.grid[2] : b.count;
      const depth = b.grid ? b.grid[2] : 1;
      const data = new Float32Array(coalitions.length * width);
      coalitions.forEach((c, r) => {
        for (let k = 0; k < width; k++) data[r * width + k] = c[b.start + Math.floor(k / depth)]!;
      });
      const shape = b.grid ? [coalitions.length, width] : [coalitions.length, ...Array<number>(b.rank - 2).fill(1), width];
      const mask = tf.tidy(() => {
        const m = tf.tensor(data, shape);
        // [R, 1.., C] → [R·rowsPer, 1.., C], by broadcasting (wasm's Tile is a plain loop).
        const tiled = tf.mul(tf.expandDims(m, 1), tf.ones([1, rowsPer, ...Array<number>(shape.length - 1).fill(1)]));
        return tf.reshape(tiled, [coalitions.length * rowsPer, ...shape.slice(1)]);
      });
      (b.kind === 'positions' ? inputMasks : masks).set(b.layer, mask);
    }
    return { masks, inputMasks };
  }

  /**
   * Masks of one coalition given as a float vector `p` (1 = present), shaped to broadcast over every
   * row: differentiable in `p`, so the game's gradient says what removing each player would do.
   */
  masksOf(p: tf.Tensor1D): Pick<RunOptions, 'masks' | 'inputMasks'> {
    const masks = new Map<string, tf.Tensor>();
    const inputMasks = new Map<string, tf.Tensor>();
    for (const b of this.blocks) {
      const own = tf.slice(p, [b.start], [b.count]);
      if (b.grid)
        inputMasks.set(b.layer, tf.reshape(tf.mul(tf.reshape(own, [b.count, 1]), tf.ones([1, b.grid[2]])), [1, b.count * b.grid[2]]));
      else masks.set(b.layer, tf.reshape(own, [1, ...Array<number>(b.rank - 2).fill(1), b.count]));
    }
    return { masks, inputMasks };
  }
}

/** Frees what `masks` made. */
export function disposeMasks(m: Pick<RunOptions, 'masks' | 'inputMasks'>): void {
  tf.dispose([...(m.masks?.values() ?? []), ...(m.inputMasks?.values() ?? [])]);
}
