import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { encodePng } from '../../src/core/output/png.ts';
import type { SampleFile } from '../../src/core/sample/sample.ts';
import { loadFashionMnist } from '../data/fashion.ts';
import { loadGlyphs } from '../data/glyphs.ts';
import { loadMnist, type ImageSet } from '../data/mnist.ts';
import { Rng } from '../../src/core/util/rng.ts';

/**
 * A trusted sample as a user lays it out (`<class>/<n>.png`): the first `perClass` images of each class
 * from row `from` on, so a sample can be drawn from images the evaluation does not use.
 */
export async function sampleFromSet(set: ImageSet, perClass: number, from = 0): Promise<SampleFile[]> {
  return sampleOfRows(set, drawRows(set, perClass, rowsFrom(from, set.count)));
}

function* rowsFrom(from: number, count: number): Generator<number> {
  for (let i = from; i < count; i++) yield i;
}

/** The rows of a draw: the first `perClass` images of each class in the order `rows` visits them. */
export function drawRows(set: Pick<ImageSet, 'labels' | 'classes'>, perClass: number, rows: Iterable<number>): number[] {
  const taken = new Array<number>(set.classes).fill(0);
  const out: number[] = [];
  for (const i of rows) {
    const k = set.labels[i]!;
    if (taken[k]! >= perClass) continue;
    out.push(i);
    taken[k]!++;
    if (out.length === perClass * set.classes) break;
  }
  return out;
}

/** The files of drawn rows, numbered per class in draw order (`3/0.png`, `3/1.png`, …). */
async function sampleOfRows(set: ImageSet, rows: readonly number[]): Promise<SampleFile[]> {
  const [h, w, c] = set.shape;
  const px = h * w * c;
  const taken = new Array<number>(set.classes).fill(0);
  const files: SampleFile[] = [];
  for (const i of rows) {
    const k = set.labels[i]!;
    files.push({ path: `${k}/${taken[k]}.png`, bytes: await encodePng(w, h, c as 1 | 3, set.images.subarray(i * px, (i + 1) * px)) });
    taken[k]!++;
  }
  return files;
}

/** Where test-split samples start: tests and benches judge at most the first 3000 MNIST and Fashion-MNIST test rows. */
export const TEST_SAMPLE_FROM = 5000;

export type SampleDataset = 'mnist' | 'fashion' | 'glyphs';

/** How a trusted sample is drawn: which split, and for the training split which seeded draw. */
export interface SampleDraw {
  /** `test` (default): the first images per class from TEST_SAMPLE_FROM on. `train`: a seeded draw. */
  split?: 'test' | 'train';
  /** The training-split draw's seed (1 when absent): each seed draws another sample, so runs over seeds see its variance. */
  seed?: number;
}

const sets = new Map<string, ImageSet>();
function setOf(dataset: SampleDataset, split: 'test' | 'train', perClass: number): ImageSet {
  // The glyphs' sample is their training split whatever the split asked (trustedSample): one set per size.
  const key = dataset === 'glyphs' ? `glyphs/${perClass}` : `${dataset}/${split}`;
  if (!sets.has(key))
    sets.set(key, dataset === 'glyphs' ? loadGlyphs('train', perClass) : dataset === 'mnist' ? loadMnist(split) : loadFashionMnist(split));
  return sets.get(key)!;
}

/**
 * The one rule every test, bench and the demo draw a trusted sample by, so a table and a test that say
 * "ten per class" mean the same images. The glyphs' sample is always their training split's first
 * images, their test split being the judgement's whole. Issue 15's acceptance draws from the training
 * split (what a registry keeps beside a model, which the model has seen); the test split's unjudged rows
 * keep the earlier tables comparable.
 */
export async function trustedSample(dataset: SampleDataset, perClass = 10, draw: SampleDraw = {}): Promise<SampleFile[]> {
  const split = draw.split ?? 'test';
  const set = setOf(dataset, split, perClass);
  const order =
    dataset === 'glyphs'
      ? rowsFrom(0, set.count)
      : split === 'test'
        ? rowsFrom(TEST_SAMPLE_FROM, set.count)
        : new Rng(0x5a4d1e ^ (draw.seed ?? 1)).permutation(set.count);
  return sampleOfRows(set, drawRows(set, perClass, order));
}

/** Writes sample files under `dir`, as the CLI's --clean-samples reads them. */
export function writeSampleFolder(dir: string, files: readonly SampleFile[]): void {
  for (const f of files) {
    mkdirSync(dirname(join(dir, f.path)), { recursive: true });
    writeFileSync(join(dir, f.path), f.bytes);
  }
}

const dirs = new Map<string, string>();

/** A trusted-sample folder (trustedSample's test-split draw) for few-shot scans through the CLI; written once per process. */
export async function sampleDir(dataset: SampleDataset, perClass = 10): Promise<string> {
  const key = `${dataset}-${perClass}`;
  if (!dirs.has(key)) {
    const dir = mkdtempSync(join(tmpdir(), `shapguard-sample-${key}-`));
    writeSampleFolder(dir, await trustedSample(dataset, perClass));
    dirs.set(key, dir);
  }
  return dirs.get(key)!;
}
