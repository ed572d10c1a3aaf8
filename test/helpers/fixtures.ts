import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ManifestEntry } from '../../tools/fixtures/specs.ts';
import type { ZooEntry } from '../../tools/fixtures/zoo.ts';
import { loadGlyphs } from '../data/glyphs.ts';
import { loadMnist, type ImageSet } from '../data/mnist.ts';

export const MODELS = resolve('test/fixtures/models');

/** The committed fixtures with their recorded real-data accuracy and ASR. */
export function manifest(): ManifestEntry[] {
  return JSON.parse(readFileSync(join(MODELS, 'manifest.json'), 'utf8')) as ManifestEntry[];
}

/** The fixture zoo's folder (tools/fixtures/zoo.ts builds it); a zoo entry's path is relative to it. */
export const ZOO = 'test/fixtures/zoo';

/** A zoo model's entry by name, with its attack, input range and recorded real-data ASR. */
export function zooEntry(name: string): ZooEntry {
  const m = (JSON.parse(readFileSync(join(ZOO, 'manifest.json'), 'utf8')) as ZooEntry[]).find((x) => x.name === name);
  if (m === undefined) throw new Error(`no zoo model named ${name} in ${ZOO}/manifest.json`);
  return m;
}

/** Real held-out test images for a fixture's dataset (a fixed prefix, to keep the suite quick). */
export function heldOut(dataset: ManifestEntry['dataset']): ImageSet {
  return dataset === 'mnist' ? loadMnist('test', 3000) : loadGlyphs('test');
}
