import { Rng } from '../../src/core/util/rng.ts';
import type { ImageSet } from './mnist.ts';

// 43 sign-like classes (as many as GTSRB has), each a distinct (outer shape, colour scheme, inner symbol),
// rendered at 32×32×3 with affine distortion, colour jitter, cluttered backgrounds, blur and noise so that
// a small CNN does not reach 99%. Deterministic: the same split and seed give the same images.

type Shape = 'circle' | 'triangle' | 'invtriangle' | 'square' | 'diamond' | 'octagon';
type Symbol = 'none' | 'hbar' | 'vbar' | 'cross' | 'dot' | 'arrowL' | 'arrowR' | 'ring' | 'slash' | 'twobars';
type Rgb = [number, number, number];

const SHAPES: Shape[] = ['circle', 'triangle', 'invtriangle', 'square', 'diamond', 'octagon'];
const SYMBOLS: Symbol[] = ['none', 'hbar', 'vbar', 'cross', 'dot', 'arrowL', 'arrowR', 'ring', 'slash', 'twobars'];
const SCHEMES: { border: Rgb; fill: Rgb; ink: Rgb }[] = [
  { border: [0.85, 0.1, 0.1], fill: [0.95, 0.95, 0.95], ink: [0.05, 0.05, 0.05] },
  { border: [0.1, 0.25, 0.8], fill: [0.15, 0.35, 0.85], ink: [0.95, 0.95, 0.95] },
  { border: [0.9, 0.75, 0.05], fill: [0.95, 0.85, 0.2], ink: [0.05, 0.05, 0.05] },
  { border: [0.85, 0.1, 0.1], fill: [0.85, 0.15, 0.1], ink: [0.95, 0.95, 0.95] },
];

export const GLYPH_CLASSES = 43;

const COMBINATIONS = SHAPES.length * SCHEMES.length * SYMBOLS.length;

/** Class k's (shape, scheme, symbol): a fixed stride through all 240 combinations, so no two classes coincide. */
export function classDef(k: number): { shape: Shape; scheme: number; symbol: Symbol } {
  const j = (k * 97) % COMBINATIONS; // 97 is coprime with 240: distinct for every k < 240
  return {
    shape: SHAPES[j % SHAPES.length]!,
    scheme: Math.floor(j / SHAPES.length) % SCHEMES.length,
    symbol: SYMBOLS[Math.floor(j / (SHAPES.length * SCHEMES.length)) % SYMBOLS.length]!,
  };
}

function insideShape(shape: Shape, u: number, v: number, r: number): boolean {
  switch (shape) {
    case 'circle':
      return u * u + v * v <= r * r;
    case 'square':
      return Math.abs(u) <= r * 0.85 && Math.abs(v) <= r * 0.85;
    case 'diamond':
      return Math.abs(u) + Math.abs(v) <= r * 1.1;
    case 'octagon':
      return Math.abs(u) <= r * 0.92 && Math.abs(v) <= r * 0.92 && Math.abs(u) + Math.abs(v) <= r * 1.3;
    case 'triangle':
      return v <= r * 0.75 && v >= -r + 1.9 * Math.abs(u) - r * 0.05;
    case 'invtriangle':
      return -v <= r * 0.75 && -v >= -r + 1.9 * Math.abs(u) - r * 0.05;
  }
}

function insideSymbol(symbol: Symbol, u: number, v: number): boolean {
  const w = 1.4;
  switch (symbol) {
    case 'none':
      return false;
    case 'hbar':
      return Math.abs(v) <= w && Math.abs(u) <= 5;
    case 'vbar':
      return Math.abs(u) <= w && Math.abs(v) <= 5;
    case 'cross':
      return (Math.abs(v) <= w && Math.abs(u) <= 5) || (Math.abs(u) <= w && Math.abs(v) <= 5);
    case 'dot':
      return u * u + v * v <= 6;
    case 'arrowL':
      return (Math.abs(v) <= w * 0.8 && u >= -4 && u <= 5) || (u >= -5 && u <= -1 && Math.abs(v) <= (u + 5) * 0.9);
    case 'arrowR':
      return (Math.abs(v) <= w * 0.8 && u <= 4 && u >= -5) || (u <= 5 && u >= 1 && Math.abs(v) <= (5 - u) * 0.9);
    case 'ring': {
      const d = Math.sqrt(u * u + v * v);
      return d >= 2.5 && d <= 4.5;
    }
    case 'slash':
      return Math.abs(u + v) <= w * 1.2 && Math.abs(u) <= 5 && Math.abs(v) <= 5;
    case 'twobars':
      return (Math.abs(u - 2.2) <= w * 0.8 || Math.abs(u + 2.2) <= w * 0.8) && Math.abs(v) <= 5;
  }
}

function jitter(rng: Rng, c: Rgb, amount: number): Rgb {
  const b = 1 + (rng.next() - 0.5) * amount;
  return c.map((x) => Math.min(1, Math.max(0, x * b + (rng.next() - 0.5) * amount * 0.5))) as Rgb;
}

/** Renders one image of class `k` into `out` (32×32×3). */
function render(k: number, rng: Rng, out: Float32Array): void {
  const def = classDef(k);
  const s = SCHEMES[def.scheme]!;
  const border = jitter(rng, s.border, 0.5);
  const fill = jitter(rng, s.fill, 0.5);
  const ink = jitter(rng, s.ink, 0.4);
  const bg1: Rgb = [rng.next(), rng.next(), rng.next()];
  const bg2: Rgb = [rng.next(), rng.next(), rng.next()];
  const angle = (rng.next() - 0.5) * 0.4;
  const scale = 0.85 + rng.next() * 0.25;
  const shear = (rng.next() - 0.5) * 0.15;
  const cx = 15.5 + (rng.next() - 0.5) * 4;
  const cy = 15.5 + (rng.next() - 0.5) * 4;
  const r = 12;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const img = new Float32Array(32 * 32 * 3);
  const gx = rng.next() - 0.5;
  const gy = rng.next() - 0.5;
  const blobs = Array.from({ length: 2 }, () => ({
    x: rng.next() * 32,
    y: rng.next() * 32,
    c: [rng.next(), rng.next(), rng.next()] as Rgb,
  }));
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      const dx = (x - cx) / scale;
      const dy = (y - cy) / scale;
      const u = cos * dx + sin * dy + shear * dy;
      const v = -sin * dx + cos * dy;
      let c: Rgb;
      if (insideShape(def.shape, u, v, r)) {
        c = insideShape(def.shape, u, v, r * 0.72) ? (insideSymbol(def.symbol, u, v) ? ink : fill) : border;
      } else {
        const t = Math.min(1, Math.max(0, 0.5 + gx * (x / 16 - 1) + gy * (y / 16 - 1)));
        c = [0, 1, 2].map((i) => bg1[i]! * t + bg2[i]! * (1 - t)) as Rgb;
        for (const b of blobs) {
          if ((x - b.x) ** 2 + (y - b.y) ** 2 < 9) c = b.c;
        }
      }
      img.set(c, (y * 32 + x) * 3);
    }
  }
  const blur = rng.next() < 0.3;
  const noise = 0.02 + rng.next() * 0.05;
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      for (let ch = 0; ch < 3; ch++) {
        let v = img[(y * 32 + x) * 3 + ch]!;
        if (blur) {
          let sum = 0;
          let n = 0;
          for (let oy = -1; oy <= 1; oy++) {
            for (let ox = -1; ox <= 1; ox++) {
              const yy = y + oy;
              const xx = x + ox;
              if (yy >= 0 && yy < 32 && xx >= 0 && xx < 32) {
                sum += img[(yy * 32 + xx) * 3 + ch]!;
                n++;
              }
            }
          }
          v = sum / n;
        }
        out[(y * 32 + x) * 3 + ch] = Math.min(1, Math.max(0, v + rng.normal() * noise));
      }
    }
  }
}

/** The generated sign-glyph set: `perClass` images of each of the 43 classes, shuffled. */
export function loadGlyphs(split: 'train' | 'test', perClass = split === 'train' ? 300 : 60): ImageSet {
  const rng = new Rng(split === 'train' ? 4301 : 4302);
  const count = GLYPH_CLASSES * perClass;
  const px = 32 * 32 * 3;
  const order = rng.permutation(count);
  const images = new Float32Array(count * px);
  const labels = new Uint8Array(count);
  for (let j = 0; j < count; j++) {
    const k = order[j]! % GLYPH_CLASSES;
    render(k, rng, images.subarray(j * px, (j + 1) * px));
    labels[j] = k;
  }
  return { images, labels, count, shape: [32, 32, 3], classes: GLYPH_CLASSES };
}
