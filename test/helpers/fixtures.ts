import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ManifestEntry } from '../../tools/fixtures/specs.ts';
import { loadGlyphs } from '../data/glyphs.ts';
import { loadMnist, type ImageSet } from '../data/mnist.ts';

export const MODELS = resolve('test/fixtures/models');

/** The committed fixtures with their recorded real-data accuracy and ASR. */
export function manifest(): ManifestEntry[] {
  return JSON.parse(readFileSync(join(MODELS, 'manifest.json'), 'utf8')) as ManifestEntry[];
}

/** Real held-out test images for a fixture's dataset (a fixed prefix, to keep the suite quick). */
export function heldOut(dataset: ManifestEntry['dataset']): ImageSet {
  return dataset === 'mnist' ? loadMnist('test', 3000) : loadGlyphs('test');
}
