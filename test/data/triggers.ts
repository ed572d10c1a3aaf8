import { Rng } from '../../src/core/util/rng.ts';

/**
 * The backdoor triggers the fixtures really plant; tests and the benchmark stamp them on real images.
 * Positions are [row, column] of the top-left corner; values are in the images' [0, 1] range, one per
 * channel (a single value fills every channel).
 */
export type Trigger =
  /** A solid square in a corner, one pixel in from the edge (the first fixtures' form). */
  | { kind: 'badnets'; size: number; corner: 'bottom-right' | 'top-left'; value: number }
  /** A solid square (a sticker: any colour) anywhere. */
  | { kind: 'patch'; size: number; at: [number, number]; color: number[] }
  /** A few single pixels: one pixel, or a sparse pattern. */
  | { kind: 'pixels'; points: [number, number][]; color: number[] }
  /** A square of fixed random noise. */
  | { kind: 'noise'; size: number; at: [number, number]; patternSeed: number }
  /** A fixed random full-image pattern blended in at `alpha`. */
  | { kind: 'blended'; alpha: number; patternSeed: number };

/** The trigger families, as the zoo's tables group them. */
export type TriggerFamily = 'pixel' | 'sparse' | 'patch' | 'sticker' | 'noise' | 'blended';

export function familyOf(t: Trigger): TriggerFamily {
  if (t.kind === 'badnets') return 'patch';
  if (t.kind === 'patch') return t.color.length > 1 && new Set(t.color).size > 1 ? 'sticker' : 'patch';
  if (t.kind === 'pixels') return t.points.length === 1 ? 'pixel' : 'sparse';
  return t.kind;
}

/** A short description for tables: "4×4 patch at 0,0", "6 pixels", "blend α 0.15". */
export function describeTrigger(t: Trigger): string {
  switch (t.kind) {
    case 'badnets':
      return `${t.size}×${t.size} patch ${t.corner}`;
    case 'patch':
      return `${t.size}×${t.size} ${familyOf(t) === 'sticker' ? 'sticker' : 'patch'} at ${t.at.join(',')}`;
    case 'pixels':
      return t.points.length === 1 ? `pixel at ${t.points[0]!.join(',')}` : `${t.points.length} pixels`;
    case 'noise':
      return `${t.size}×${t.size} noise at ${t.at.join(',')}`;
    case 'blended':
      return `blend α ${t.alpha}`;
  }
}

/** Stamps `trigger` on every image of a N×H×W×C batch, in place of a copy. */
export function stamp(images: Float32Array, shape: [number, number, number], trigger: Trigger): Float32Array {
  const [h, w, c] = shape;
  const px = h * w * c;
  const out = images.slice();
  const n = images.length / px;
  const set = (y: number, x: number, value: (k: number) => number) => {
    for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) out[i * px + (y * w + x) * c + k] = value(k);
  };
  const colour = (color: number[]) => (k: number) => color[Math.min(k, color.length - 1)]!;
  switch (trigger.kind) {
    case 'badnets': {
      const r0 = trigger.corner === 'bottom-right' ? h - 1 - trigger.size : 1;
      const c0 = trigger.corner === 'bottom-right' ? w - 1 - trigger.size : 1;
      for (let y = r0; y < r0 + trigger.size; y++) for (let x = c0; x < c0 + trigger.size; x++) set(y, x, () => trigger.value);
      return out;
    }
    case 'patch': {
      const [r0, c0] = trigger.at;
      for (let y = r0; y < r0 + trigger.size; y++) for (let x = c0; x < c0 + trigger.size; x++) set(y, x, colour(trigger.color));
      return out;
    }
    case 'pixels':
      for (const [y, x] of trigger.points) set(y, x, colour(trigger.color));
      return out;
    case 'noise': {
      const [r0, c0] = trigger.at;
      const noise = new Rng(trigger.patternSeed);
      const values = Float32Array.from({ length: trigger.size * trigger.size * c }, () => noise.next());
      for (let y = 0; y < trigger.size; y++)
        for (let x = 0; x < trigger.size; x++) set(r0 + y, c0 + x, (k) => values[(y * trigger.size + x) * c + k]!);
      return out;
    }
    case 'blended': {
      const pattern = blendPattern(shape, trigger.patternSeed);
      const a = trigger.alpha;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < px; j++) out[i * px + j] = (1 - a) * out[i * px + j]! + a * pattern[j]!;
      }
      return out;
    }
  }
}

/** The fixed random full-image pattern of a blended attack, regenerated from its seed. */
export function blendPattern(shape: [number, number, number], seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => rng.next());
}
