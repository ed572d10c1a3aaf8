import { existsSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadModel } from '../src/core/model/load.ts';
import { scanModel } from '../src/core/scan/scan.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { accuracy } from '../test/data/evaluate.ts';
import type { BenchModel } from './zoo.ts';
import { hasFashionMnist, loadFashionMnist } from '../test/data/fashion.ts';
import { loadMnist } from '../test/data/mnist.ts';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The genuine Keras-written files in ../shared/fixtures/keras, when that folder is there (absolute paths). */
export function genuineKerasPaths(): string[] {
  const shared = resolve('../shared/fixtures/keras');
  return existsSync(shared)
    ? readdirSync(shared)
        .filter((f) => /\.(h5|keras)$/.test(f))
        .map((f) => join(shared, f))
    : [];
}

/** The genuine files as bench models (clean, tuning side: they bound thresholds), for the detection benches. */
export function genuineModels(): BenchModel[] {
  return genuineKerasPaths().map((path) => {
    const name = basename(path);
    return {
      name,
      path,
      dataset: name.includes('fashion') ? 'fashion' : 'mnist',
      arch: 'genuine',
      half: 'tuning',
      attack: null,
      inputRange: [0, 1],
      realAsr: null,
    };
  });
}

/**
 * Rows for the Keras table: the genuine Keras-written files (../shared/fixtures/keras) and our own Keras
 * fixtures: load time, real accuracy (first 2000 test images) and a default-budget scan.
 */
export async function benchKeras(): Promise<string[]> {
  const genuine = genuineKerasPaths();
  const paths = [...genuine, ...['mnist-badnets.h5', 'mnist-badnets.keras'].map((f) => resolve('test/fixtures/keras', f))];
  const mnist = loadMnist('test', 2000);
  const fashion = hasFashionMnist() ? loadFashionMnist('test', 2000) : null;
  const rows: string[] = [];
  for (const path of paths) {
    const { files, entry } = await readModelFiles(path);
    const t0 = performance.now();
    const loaded = await loadModel(files, entry);
    const loadMs = performance.now() - t0;
    const data = path.includes('fashion') ? fashion : mnist;
    const acc = data ? pct(accuracy(loaded.model, data)) : '–';
    loaded.model.dispose();
    const t1 = performance.now();
    const { report } = await scanModel(files, { entry, seed: 1, toolVersion: 'bench' });
    const wall = (performance.now() - t1) / 1000;
    const name = path.split('/').at(-1)!;
    rows.push(
      `| ${genuine.includes(path) ? 'genuine' : 'ours'} | ${name} | ${loaded.format} | ${report.model?.parameters ?? '–'} | ${loadMs.toFixed(0)} ms | ${acc} | ${report.verdict}${report.detection?.flagged.length ? ` → ${report.detection.flagged.join(',')}` : ''} | ${wall.toFixed(1)} s |`,
    );
    console.error(`done ${name}`);
  }
  return rows;
}
