import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { attackSuccessRate } from '../data/evaluate.ts';
import { loadFashionMnist } from '../data/fashion.ts';
import { loadModelFromDisk } from '../data/load-dir.ts';
import { loadMnist } from '../data/mnist.ts';
import { runCli } from '../helpers/cli.ts';
import { ZOO, zooEntry } from '../helpers/fixtures.ts';
import { sampleDir } from '../helpers/sample.ts';
import type { ZooEntry } from '../../tools/fixtures/zoo.ts';

// A representative subset of the zoo (the bench runs all of it): the models on which the scan once claimed
// repairs that real test images with the really planted trigger refute, and clean models it once flagged.
// Judged on real data, never on what the scanner believes.
const testImages = (m: ZooEntry) => (m.dataset === 'mnist' ? loadMnist('test', 2000) : loadFashionMnist('test', 2000));
const scan = async (m: ZooEntry, seed: number, fewShot = false) =>
  runCli([
    'scan',
    join(ZOO, m.path),
    '--out',
    '$OUT',
    '--seed',
    String(seed),
    ...(m.inputRange[1] === 255 ? ['--input-range', '0,255'] : []),
    ...(fewShot ? ['--clean-samples', await sampleDir(m.dataset)] : []),
  ]);

describe('no false certificates (few-shot: the mode that can certify a repair)', () => {
  // A repair the scan claims, judged on real test images with the planted trigger (a Fashion-MNIST LeNet's
  // six-pixel trigger: pruned and certified at this seed, 0.6% real ASR left in the bench), and a blend,
  // which pruning once "repaired" at 98% real ASR left (seed 2: with detection on the sample's images it is
  // flagged at seeds 2 and 3, not at 1). The cases first chosen here (a 5×5 patch pruning
  // once removed only in part; a Fashion blend) became detection misses at every seed on the rebuilt zoo,
  // so they no longer reached the certificate. The rule itself (pruning that removes the reversed trigger
  // but not the planted one) is test/wasm/certificate.test.ts; issue 19's measured case (wide Dense head,
  // logits, raw 0–255 input, 4×4 patch) is scanned few-shot in test/wasm/universality.test.ts.
  it.each([
    ['fashion-lenet-sparse6-tr', 4],
    ['mnist-relubn-blend15', 2],
  ] as const)('%s at seed %i: a claimed repair holds on real images; otherwise nothing is written', async (name, seed) => {
    const m = zooEntry(name);
    const run = await scan(m, seed, true);
    expect(run.report!.mode).toBe('few-shot');
    expect(run.report, run.stderr).toBeDefined();
    // The planted target is flagged: a run that misses it would pass below without reaching the certificate.
    expect(run.report!.detection!.flagged).toContain(m.attack!.target);
    const status = run.report!.repair?.status ?? null;
    if (status === 'repaired') {
      const repaired = await loadModelFromDisk(join(run.repairedDir!, 'model.json'));
      const asr = attackSuccessRate(repaired, testImages(m), m.attack!.trigger, m.attack!.target, m.inputRange[1]);
      expect(asr).toBeLessThanOrEqual(0.1);
    } else {
      expect(status).toBe('not-repaired');
      expect(run.repairedDir).toBeNull();
      expect(run.code).toBe(1);
    }
  });
});

describe('clean zoo models with naturally small classes', () => {
  // A global-average-pooling head gives two classes tiny triggers together: once flagged as two targets.
  it.each([['mnist-gap-clean', 1]] as const)('%s at seed %i is not called backdoored', async (name, seed) => {
    const run = await scan(zooEntry(name), seed);
    expect(run.report?.verdict, run.stderr).not.toBe('backdoor');
    expect(run.report!.detection!.flagged).toEqual([]);
    expect(run.repairedDir).toBeNull();
  });
});
