import { Rng } from '../../src/core/util/rng.ts';

/** The backdoor triggers the fixtures really plant; tests and the benchmark stamp them on real images. */
export type Trigger =
  | { kind: 'badnets'; size: number; corner: 'bottom-right' | 'top-left'; value: number }
  | { kind: 'blended'; alpha: number; patternSeed: number };

/** Stamps `trigger` on every image of a N×H×W×C batch, in place of a copy. */
export function stamp(images: Float32Array, shape: [number, number, number], trigger: Trigger): Float32Array {
  const [h, w, c] = shape;
  const px = h * w * c;
  const out = images.slice();
  const n = images.length / px;
  if (trigger.kind === 'badnets') {
    const r0 = trigger.corner === 'bottom-right' ? h - 1 - trigger.size : 1;
    const c0 = trigger.corner === 'bottom-right' ? w - 1 - trigger.size : 1;
    for (let i = 0; i < n; i++) {
      for (let y = r0; y < r0 + trigger.size; y++) {
        for (let x = c0; x < c0 + trigger.size; x++) {
          for (let k = 0; k < c; k++) out[i * px + (y * w + x) * c + k] = trigger.value;
        }
      }
    }
    return out;
  }
  const pattern = blendPattern(shape, trigger.patternSeed);
  const a = trigger.alpha;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < px; j++) out[i * px + j] = (1 - a) * out[i * px + j]! + a * pattern[j]!;
  }
  return out;
}

/** The fixed random full-image pattern of a blended attack, regenerated from its seed. */
export function blendPattern(shape: [number, number, number], seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => rng.next());
}
