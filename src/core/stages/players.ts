import * as tf from '@tensorflow/tfjs-core';
import type { RunOptions } from '../tfjs/graph.ts';
import type { ModelInfo } from '../model/model-info.ts';
import { ShapguardError } from '../errors.ts';

/**
 * One prunable unit. A channel player is an output channel of a Conv2D (or a unit of a Dense) layer. A
 * position player is one spatial position of the feature map that a Flatten feeds into a Dense layer: all
 * of that position's channels as the Dense layer's inputs. A localised trigger enters the classifier
 * through the positions it covers, however many channels carry it, so a patch backdoor that is spread
 * over channels can still sit in one position. A cell player is one channel of one such position (both
 * fields set): the repair splits a position that carries the backdoor into its cells (`withCells`), since
 * the whole position also carries what the model needs there.
 */
export interface Player {
  layer: string;
  /** The output channel (channel players), the channel within the position (cell players), else null. */
  channel: number | null;
  /** [row, column] in the flattened feature map (position and cell players), else null. */
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

/** Which kind of player `p` is: a channel, a whole position, or one channel of a position (a cell). */
export function playerKind(p: Player): 'channel' | 'position' | 'cell' {
  if (p.position === null) return 'channel';
  return p.channel === null ? 'position' : 'cell';
}

/** A stable text key for a player ("conv2:5", "fc1@0,3", a cell "fc1@0,3:12"), for sets and messages. */
export function playerKey(p: Player): string {
  const kind = playerKind(p);
  if (kind === 'channel') return `${p.layer}:${p.channel}`;
  return kind === 'position' ? `${p.layer}@${p.position!.join(',')}` : `${p.layer}@${p.position!.join(',')}:${p.channel}`;
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
  /** Position layers split into cells: per flat input of the layer, its cell player's index, or -1. */
  cells: Int32Array | null;
}

/** The players of the chosen layers, in graph order, and where each layer's block starts. */
export class PlayerSet {
  readonly players: Player[] = [];
  readonly blocks: Block[] = [];

  /** The players of `layers`; or, from `withCells`, a given list and its blocks. */
  constructor(info: ModelInfo, layers: PlayerLayer[]);
  constructor(derived: { players: Player[]; blocks: Block[] });
  constructor(source: ModelInfo | { players: Player[]; blocks: Block[] }, layers: PlayerLayer[] = []) {
    if (!('graph' in source)) {
      this.players.push(...source.players);
      this.blocks.push(...source.blocks);
      return;
    }
    const info = source;
    for (const { layer, kind } of layers) {
      const step = info.graph.stepOf(layer);
      if (kind === 'positions') {
        const grid = info.graph.flattenGrid(step);
        if (grid === null)
          throw new ShapguardError(
            'input',
            `--layers: "${layer}" is not a Dense layer fed by a Flatten of a feature map, so it has no position players`,
          );
        this.blocks.push({ layer, kind, step, start: this.players.length, count: grid[0] * grid[1], rank: 2, grid, cells: null });
        for (let r = 0; r < grid[0]; r++) for (let c = 0; c < grid[1]; c++) this.players.push({ layer, channel: null, position: [r, c] });
      } else {
        const shape = info.graph.steps[step]!.layer.outputShape as number[];
        const channels = shape.at(-1)!;
        this.blocks.push({ layer, kind, step, start: this.players.length, count: channels, rank: shape.length, grid: null, cells: null });
        for (let c = 0; c < channels; c++) this.players.push({ layer, channel: c, position: null });
      }
    }
    this.blocks.sort((a, b) => a.step - b.step || (a.kind === 'positions' ? -1 : 1));
  }

  /**
   * These players followed by the cells of the position players `positions` (indices here): every index
   * keeps its meaning, so what is pruned so far stays valid. A cell is present only while its position is.
   */
  withCells(positions: readonly number[]): PlayerSet {
    const next = { players: [...this.players], blocks: [] as Block[] };
    for (const b of this.blocks) {
      const mine = positions.filter((k) => k >= b.start && k < b.start + b.count);
      if (b.grid === null || mine.length === 0) {
        next.blocks.push(b);
        continue;
      }
      const depth = b.grid[2];
      const cells = b.cells?.slice() ?? new Int32Array(b.count * depth).fill(-1);
      for (const k of mine) {
        const pos = k - b.start;
        if (cells[pos * depth] !== -1) continue;
        for (let ch = 0; ch < depth; ch++) {
          cells[pos * depth + ch] = next.players.length;
          next.players.push({ layer: b.layer, channel: ch, position: this.players[k]!.position });
        }
      }
      next.blocks.push({ ...b, cells });
    }
    return new PlayerSet(next);
  }

  /**
   * What player `k` counts for against the prune cap: a cell is one channel's share of its position, so
   * splitting a position does not buy room to prune more of the model.
   */
  unitsOf(k: number): number {
    const p = this.players[k]!;
    if (playerKind(p) !== 'cell') return 1;
    return 1 / this.blocks.find((b) => b.layer === p.layer && b.grid !== null)!.grid![2];
  }

  /** The players before any split into cells: what the prune cap is a share of. */
  get baseSize(): number {
    return this.players.filter((p) => playerKind(p) !== 'cell').length;
  }

  /** The cell players of position player `k` (indices), empty when it was not split. */
  cellsOf(k: number): number[] {
    const b = this.blocks.find((x) => x.kind === 'positions' && k >= x.start && k < x.start + x.count);
    if (b?.cells == null) return [];
    const depth = b.grid![2];
    const out = Array.from(b.cells.subarray((k - b.start) * depth, (k - b.start + 1) * depth));
    return out[0] === -1 ? [] : out;
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
      const cells = b.cells;
      coalitions.forEach((c, r) => {
        for (let k = 0; k < width; k++)
          data[r * width + k] = c[b.start + Math.floor(k / depth)]! * (cells && cells[k]! >= 0 ? c[cells[k]!]! : 1);
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
      if (b.grid) {
        const positions = tf.reshape(tf.mul(tf.reshape(own, [b.count, 1]), tf.ones([1, b.grid[2]])), [1, b.count * b.grid[2]]);
        inputMasks.set(b.layer, b.cells ? tf.mul(positions, cellMask(p, b.cells)) : positions);
      } else masks.set(b.layer, tf.reshape(own, [1, ...Array<number>(b.rank - 2).fill(1), b.count]));
    }
    return { masks, inputMasks };
  }
}

/**
 * Per flat input of a split position layer, its cell's presence in `p` (1 where the input is no cell's),
 * [1, inputs]. A one-hot product rather than a gather: wasm has no kernel for a gather's gradient.
 */
function cellMask(p: tf.Tensor1D, cells: Int32Array): tf.Tensor {
  const used = cells.filter((i) => i >= 0);
  const lo = Math.min(...used);
  const n = Math.max(...used) - lo + 1;
  const pick = new Float32Array(n * cells.length);
  const rest = new Float32Array(cells.length);
  cells.forEach((i, k) => (i < 0 ? (rest[k] = 1) : (pick[(i - lo) * cells.length + k] = 1)));
  return tf.add(
    tf.matMul(tf.reshape(tf.slice(p, [lo], [n]), [1, n]), tf.tensor2d(pick, [n, cells.length])),
    tf.tensor2d(rest, [1, cells.length]),
  );
}

/** Frees what `masks` made. */
export function disposeMasks(m: Pick<RunOptions, 'masks' | 'inputMasks'>): void {
  tf.dispose([...(m.masks?.values() ?? []), ...(m.inputMasks?.values() ?? [])]);
}
