import * as tf from '@tensorflow/tfjs-core';
import type { ModelInfo } from './model-info.ts';

/** One prunable unit: an output channel of a Conv2D (or a unit of a Dense) layer. */
export interface Player {
  layer: string;
  channel: number;
}

/** The players of the chosen layers, in graph order, and where each layer's block starts. */
export class PlayerSet {
  readonly players: Player[] = [];
  readonly blocks: { layer: string; step: number; start: number; channels: number; rank: number }[] = [];

  constructor(info: ModelInfo, layers: string[]) {
    for (const layer of layers) {
      const step = info.graph.stepOf(layer);
      const shape = info.graph.steps[step]!.layer.outputShape as number[];
      const channels = shape.at(-1)!;
      this.blocks.push({ layer, step, start: this.players.length, channels, rank: shape.length });
      for (let c = 0; c < channels; c++) this.players.push({ layer, channel: c });
    }
  }

  get size(): number {
    return this.players.length;
  }

  /** The step where evaluation can start from cached activations: the first player layer. */
  get firstStep(): number {
    return Math.min(...this.blocks.map((b) => b.step));
  }

  /**
   * Per-layer row masks for `coalitions`, each repeated for `rowsPer` consecutive rows (coalition-major),
   * shaped to broadcast over the layer's pre-activation output.
   */
  masks(coalitions: Uint8Array[], rowsPer: number): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const b of this.blocks) {
      const data = new Float32Array(coalitions.length * b.channels);
      coalitions.forEach((c, r) => {
        for (let k = 0; k < b.channels; k++) data[r * b.channels + k] = c[b.start + k]!;
      });
      const shape = [coalitions.length, ...Array<number>(b.rank - 2).fill(1), b.channels];
      out.set(
        b.layer,
        tf.tidy(() => {
          const m = tf.tensor(data, shape);
          // [R, 1.., C] → [R·rowsPer, 1.., C]
          const tiled = tf.tile(tf.expandDims(m, 1), [1, rowsPer, ...Array<number>(b.rank - 1).fill(1)]);
          return tf.reshape(tiled, [coalitions.length * rowsPer, ...shape.slice(1)]);
        }),
      );
    }
    return out;
  }
}
