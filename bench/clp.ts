import type * as tfl from '@tensorflow/tfjs-layers';
import type { Player } from '../src/core/stages/players.ts';

/** Spectral norm (largest singular value) of a rows×cols matrix, by power iteration. */
function spectralNorm(m: Float32Array, rows: number, cols: number): number {
  let v = new Float64Array(cols).fill(1 / Math.sqrt(cols));
  let sigma = 0;
  for (let it = 0; it < 50; it++) {
    const u = new Float64Array(rows);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) u[r]! += m[r * cols + c]! * v[c]!;
    const next = new Float64Array(cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) next[c]! += m[r * cols + c]! * u[r]!;
    const norm = Math.sqrt(next.reduce((a, x) => a + x * x, 0));
    if (norm === 0) return 0;
    sigma = Math.sqrt(norm);
    v = next.map((x) => x / norm);
  }
  return sigma;
}

/**
 * CLP (Zheng et al., ECCV 2022), the data-free baseline: per conv layer, prune channels whose upper bound
 * of the channel Lipschitz constant (spectral norm of the channel's kernel, scaled by a following
 * BatchNorm's γ/σ) exceeds mean + u·std of the layer. Returns channels per layer.
 */
export function clpChannels(model: tfl.LayersModel, u = 3): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const layers = model.layers;
  layers.forEach((layer, i) => {
    if (layer.getClassName() !== 'Conv2D') return;
    const kernel = layer.getWeights()[0]!;
    const [kh, kw, inC, outC] = kernel.shape as [number, number, number, number];
    const k = kernel.dataSync() as Float32Array;
    const next = layers[i + 1];
    let scale = new Float32Array(outC).fill(1);
    if (next?.getClassName() === 'BatchNormalization') {
      const w = next.weights;
      const gamma = w
        .find((x) => x.originalName.endsWith('gamma'))
        ?.read()
        .dataSync();
      const variance = w
        .find((x) => x.originalName.endsWith('moving_variance'))!
        .read()
        .dataSync();
      const eps = (next.getConfig() as { epsilon?: number }).epsilon ?? 1e-3;
      scale = Float32Array.from({ length: outC }, (_, c) => Math.abs(gamma ? gamma[c]! : 1) / Math.sqrt(variance[c]! + eps));
    }
    const bounds = Array.from({ length: outC }, (_, c) => {
      const m = new Float32Array(inC * kh * kw);
      for (let p = 0; p < kh * kw; p++) for (let ci = 0; ci < inC; ci++) m[ci * kh * kw + p] = k[(p * inC + ci) * outC + c]! * scale[c]!;
      return spectralNorm(m, inC, kh * kw);
    });
    const mean = bounds.reduce((a, b) => a + b, 0) / outC;
    const std = Math.sqrt(bounds.reduce((a, b) => a + (b - mean) ** 2, 0) / outC);
    const chosen = bounds
      .map((b, c) => [b, c] as const)
      .filter(([b]) => b > mean + u * std)
      .map(([, c]) => c);
    if (chosen.length > 0) out.set(layer.name, chosen);
  });
  return out;
}

/** The channels CLP prunes, as the scan's channel players: what prunedModel zeroes for the baselines. */
export function clpPlayers(model: tfl.LayersModel, u = 3): Player[] {
  return [...clpChannels(model, u).entries()].flatMap(([layer, cs]) => cs.map((channel) => ({ layer, channel, position: null })));
}
