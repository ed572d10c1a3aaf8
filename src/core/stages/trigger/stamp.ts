import type { ImageBatch } from '../synthesis/synth.ts';

/** Applies a reversed trigger x' = (1 − m)·x + m·p to the images of `batch` whose label is not `target`. */
export function stampReversed(
  batch: ImageBatch,
  shape: [number, number, number],
  mask: Float32Array,
  pattern: Float32Array,
  target: number,
): Float32Array {
  const [h, w, c] = shape;
  const px = h * w * c;
  const keep = otherClassRows(batch, target);
  const out = new Float32Array(keep.length * px);
  keep.forEach((i, j) => {
    for (let p = 0; p < h * w; p++) {
      const m = mask[p]!;
      for (let k = 0; k < c; k++) {
        const q = p * c + k;
        out[j * px + q] = (1 - m) * batch.images[i * px + q]! + m * pattern[q]!;
      }
    }
  });
  return out;
}

/** The rows of `batch` not labelled `target`: the images a trigger into `target` is measured on. */
export function otherClassRows(batch: ImageBatch, target: number): number[] {
  const keep: number[] = [];
  for (let i = 0; i < batch.count; i++) if (batch.labels[i] !== target) keep.push(i);
  return keep;
}
