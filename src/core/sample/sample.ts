import * as tf from '@tensorflow/tfjs-core';
import { invalid } from '../errors.ts';
import type { ImageBatch } from '../stages/synthesis/synth.ts';
import { digestFiles } from '../util/digest.ts';
import type { Rng } from '../util/rng.ts';
import { decodeImage } from './decode.ts';

/** One file of a sample folder: its path relative to the folder ('/'-separated) and its bytes. */
export interface SampleFile {
  path: string;
  bytes: Uint8Array;
}

/** Caps on a trusted sample: a few hundred small images, as the few-shot setting needs and no more. */
export const SAMPLE_LIMITS = { maxImages: 500, maxFileBytes: 2 * 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024 };

/** A decoded, validated sample: images in [0, 1] at the model's input size, labelled by their folder. */
export interface CleanSample {
  images: ImageBatch;
  perClass: number[];
  /** Images whose size was not the model's and were resized (bilinear). */
  resized: number;
  /** Files skipped as not images (other extensions, hidden files). */
  ignored: number;
  /** sha256 over the sorted "<path> <sha256>" lines: which sample was used, never the images. */
  digest: string;
  bytes: number;
}

const IMAGE = /\.(png|jpe?g)$/i;

/** The class a sample path names, after checking that it stays inside the sample root. */
function classOf(path: string, classes: number): number | null {
  const parts = path.split('/');
  if (path.startsWith('/') || path.includes('\\') || parts.some((p) => p === '..' || p === '.' || p === ''))
    invalid(`clean sample: ${JSON.stringify(path)} leaves the sample root or is not a plain relative path`);
  const name = parts[parts.length - 1]!;
  if (name.startsWith('.') || !IMAGE.test(name)) return null;
  if (parts.length < 2) invalid(`clean sample: ${path} is not in a class folder (expected <class index>/${name})`);
  const folder = parts[0]!;
  if (!/^\d+$/.test(folder) || Number(folder) >= classes)
    invalid(`clean sample: folder "${folder}" is not a class index of this ${classes}-class model (0 to ${classes - 1})`);
  return Number(folder);
}

/**
 * Reads a trusted clean sample laid out as Keras' `image_dataset_from_directory` expects (one folder per
 * class index): every bound checked before any pixel is decoded, every image decoded and checked against
 * the model's input (channels; size, resized when it differs), each problem an input error that names
 * the file. Platform-neutral: the caller lists the files (a directory in Node, a bucket prefix in a Worker).
 */
export async function readSample(
  files: readonly SampleFile[],
  shape: readonly [number, number, number],
  classes: number,
): Promise<CleanSample> {
  const [h, w, c] = shape;
  const chosen: { file: SampleFile; label: number }[] = [];
  let ignored = 0;
  let bytes = 0;
  for (const file of files) {
    const label = classOf(file.path, classes);
    if (label === null) {
      ignored++;
      continue;
    }
    if (file.bytes.byteLength > SAMPLE_LIMITS.maxFileBytes)
      invalid(`clean sample: ${file.path} is ${file.bytes.byteLength} bytes, more than ${SAMPLE_LIMITS.maxFileBytes} per image`);
    bytes += file.bytes.byteLength;
    chosen.push({ file, label });
  }
  if (chosen.length === 0) invalid('clean sample: no PNG or JPEG images in class folders');
  if (chosen.length > SAMPLE_LIMITS.maxImages)
    invalid(`clean sample: ${chosen.length} images, more than ${SAMPLE_LIMITS.maxImages}; a few per class are enough`);
  if (bytes > SAMPLE_LIMITS.maxTotalBytes) invalid(`clean sample: ${bytes} bytes of images, more than ${SAMPLE_LIMITS.maxTotalBytes}`);
  chosen.sort((a, b) => a.label - b.label || (a.file.path < b.file.path ? -1 : 1));
  const px = h * w * c;
  const images = new Float32Array(chosen.length * px);
  const labels = new Int32Array(chosen.length);
  const perClass = new Array<number>(classes).fill(0);
  let resized = 0;
  for (const [i, { file, label }] of chosen.entries()) {
    const img = await decodeImage(file.path, file.bytes);
    if (img.channels !== c)
      invalid(`clean sample: ${file.path} has ${img.channels === 1 ? '1 channel (grey)' : '3 channels (colour)'}, the model takes ${c}`);
    let data = img.data;
    if (img.width !== w || img.height !== h) {
      data = tf.tidy(
        () => tf.image.resizeBilinear(tf.tensor3d(img.data, [img.height, img.width, c]), [h, w], true).dataSync() as Float32Array,
      );
      resized++;
    }
    images.set(data, i * px);
    labels[i] = label;
    perClass[label]!++;
  }
  const digest = await digestFiles(new Map(chosen.map(({ file }) => [file.path, file.bytes])));
  return { images: { images, labels, count: chosen.length }, perClass, resized, ignored, digest: digest.combined, bytes };
}

/** Rows `idx` of a batch. */
export function rowsOf(batch: ImageBatch, idx: readonly number[]): ImageBatch {
  const px = batch.images.length / Math.max(1, batch.count);
  const images = new Float32Array(idx.length * px);
  idx.forEach((r, i) => images.set(batch.images.subarray(r * px, (r + 1) * px), i * px));
  return { images, labels: Int32Array.from(idx, (r) => batch.labels[r]!), count: idx.length };
}

/** One image in this many of each class (rounded down) is held back for the final check. */
export const HOLD_BACK_ONE_IN = 3;

/**
 * Splits the sample per class into the part the repair uses and a held-back part only the final check sees
 * (a third of each class, rounded down, so a class of one or two images is used whole): a repair certified
 * on images it was chosen on would prove little.
 */
export function splitSample(batch: ImageBatch, classes: number, rng: Rng): { use: ImageBatch; heldBack: ImageBatch } {
  const use: number[] = [];
  const held: number[] = [];
  for (let k = 0; k < classes; k++) {
    const rows = Array.from(batch.labels.entries())
      .filter(([, l]) => l === k)
      .map(([r]) => r);
    const order = rng.permutation(rows.length).map((i) => rows[i]!);
    const back = Math.floor(rows.length / HOLD_BACK_ONE_IN);
    held.push(...order.slice(0, back));
    use.push(...order.slice(back));
  }
  return {
    use: rowsOf(
      batch,
      use.sort((a, b) => a - b),
    ),
    heldBack: rowsOf(
      batch,
      held.sort((a, b) => a - b),
    ),
  };
}

/**
 * Trigger-reverse bases per class: the trusted images the model itself calls their class (`predicted`), up
 * to `perClass`, topped up with synthetic ones, so the batch keeps its size (and the budget its meaning)
 * while real backgrounds take the place of synthetic ones wherever there are enough.
 */
export function mixBases(real: ImageBatch, predicted: Int32Array, synthetic: ImageBatch, perClass: number, classes: number): ImageBatch {
  const px = synthetic.images.length / Math.max(1, synthetic.count);
  const parts: { from: ImageBatch; row: number }[] = [];
  for (let k = 0; k < classes; k++) {
    const mine = Array.from(real.labels.keys())
      .filter((r) => real.labels[r] === k && predicted[r] === k)
      .slice(0, perClass);
    const fill = Array.from(synthetic.labels.keys())
      .filter((r) => synthetic.labels[r] === k)
      .slice(0, Math.max(0, perClass - mine.length));
    parts.push(...mine.map((row) => ({ from: real, row })), ...fill.map((row) => ({ from: synthetic, row })));
  }
  const images = new Float32Array(parts.length * px);
  parts.forEach(({ from, row }, i) => images.set(from.images.subarray(row * px, (row + 1) * px), i * px));
  return { images, labels: Int32Array.from(parts, ({ from, row }) => from.labels[row]!), count: parts.length };
}
