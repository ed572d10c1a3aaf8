import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { accuracy } from '../data/evaluate.ts';
import { hasFashionMnist, loadFashionMnist } from '../data/fashion.ts';
import { loadModelFromDisk } from '../data/load-dir.ts';
import { loadMnist } from '../data/mnist.ts';
import { runCli } from '../helpers/cli.ts';

// Keras files written by real Keras installations, not by us (see ../shared/fixtures/keras/MANIFEST.md).
// They prove the HDF5/zip readers and the layer mapping on files we did not write: each must classify its
// REAL test set as well as the manifest says it does, and three of them (SCANNED) must scan clean (they are
// clean models).
const SHARED = resolve('../shared/fixtures/keras');
const present = existsSync(SHARED);
if (!present) console.warn(`keras-genuine: ${SHARED} is absent, so the genuine Keras files are not tested here`);

/** Accuracy on the first 2000 real test images that a working copy of each model reaches (manifest: 99.05, 98.65, 91.40; the others measured by us). */
const EXPECTED: Record<string, number> = {
  'kilneta-mnist-cnn.h5': 0.985,
  'kimthangg-mnist-cnn-keras3.h5': 0.98,
  'akshatv25-mnist-cnn.keras': 0.98,
  'neuralnetworker-fashion-cnn.h5': 0.905,
  'evanchien-fashion-cnn-bn.h5': 0.9,
  'aman21k-fashion-cnn.keras': 0.9,
};

const files = present ? readdirSync(SHARED).filter((f) => /\.(h5|keras)$/.test(f)) : [];

/**
 * The files scanned here, one per kind of writer and model: Keras 2's HDF5 (MNIST), the .keras zip
 * (Fashion-MNIST) and a BatchNorm model (its synthesis matches BN statistics). A clean scan of a genuine file
 * costs 25–45 s of CI's CPU, and the suite must stay under 15 minutes; all six, at two seeds, are scanned by
 * `npm run bench:zoo -- --genuine` (docs/benchmarks.md). Every file is read and judged on its test set here.
 */
const SCANNED = ['kilneta-mnist-cnn.h5', 'aman21k-fashion-cnn.keras', 'evanchien-fashion-cnn-bn.h5'];

describe.skipIf(!present)('genuine Keras files', () => {
  it('are all known to this test', () => {
    expect(files.sort()).toEqual(Object.keys(EXPECTED).sort());
    expect(SCANNED.every((f) => files.includes(f))).toBe(true);
  });

  describe.each(files)('%s', (file) => {
    it('loads and classifies its real test set as well as the original does', async () => {
      expect(hasFashionMnist(), 'Debian dataset-fashion-mnist is installed by the test set-up').toBe(true);
      const data = file.includes('fashion') ? loadFashionMnist('test', 2000) : loadMnist('test', 2000);
      const model = await loadModelFromDisk(join(SHARED, file));
      expect(accuracy(model, data)).toBeGreaterThanOrEqual(EXPECTED[file]!);
      model.dispose();
    });

    if (SCANNED.includes(file))
      it('scans clean (exit 0) and writes no repaired model', async () => {
        const run = await runCli(['scan', join(SHARED, file), '--out', '$OUT', '--seed', '1']);
        expect(run.report?.verdict, run.stderr).toBe('clean');
        expect(run.code).toBe(0);
        expect(run.report!.input!.format).toBe(file.endsWith('.keras') ? 'keras-zip' : 'keras-h5');
        expect(run.repairedDir).toBeNull();
      });
  });
});
