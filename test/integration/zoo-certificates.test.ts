import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attackSuccessRate } from '../data/evaluate.ts';
import { loadFashionMnist } from '../data/fashion.ts';
import { loadModelFromDisk } from '../data/load-dir.ts';
import { loadMnist } from '../data/mnist.ts';
import { runCli } from '../helpers/cli.ts';
import { sampleDir } from '../helpers/sample.ts';
import type { ZooEntry } from '../../tools/fixtures/zoo.ts';

// A representative subset of the zoo (the bench runs all of it): the models on which the scan once claimed
// repairs that real test images with the really planted trigger refute, and clean models it once flagged.
// Judged on real data, never on what the scanner believes.
const ZOO = 'test/fixtures/zoo';
const zoo = JSON.parse(readFileSync(join(ZOO, 'manifest.json'), 'utf8')) as ZooEntry[];
const entry = (name: string) => zoo.find((m) => m.name === name)!;
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
  // A 5×5 patch the reverse finds only in part (pruning once removed the reversed trigger, 43% real ASR
  // left); a blend (pruning once "repaired" it at 98% real ASR left). Issue 19's measured case (wide Dense
  // head, logits, raw 0–255 input, 4×4 patch) is scanned few-shot in test/wasm/universality.test.ts.
  it.each([
    ['mnist-relubn-patch5-br', 2],
    ['fashion-relubn-blend10', 1],
  ] as const)('%s at seed %i: a claimed repair holds on real images; otherwise nothing is written', async (name, seed) => {
    const m = entry(name);
    const run = await scan(m, seed, true);
    expect(run.report!.mode).toBe('few-shot');
    expect(run.report, run.stderr).toBeDefined();
    const status = run.report!.repair?.status ?? null;
    if (status === 'repaired') {
      const repaired = await loadModelFromDisk(join(run.repairedDir!, 'model.json'));
      const asr = attackSuccessRate(repaired, testImages(m), m.attack!.trigger, m.attack!.target, m.inputRange[1]);
      expect(asr).toBeLessThanOrEqual(0.1);
    } else {
      // Not repaired, or (a detection miss, a separate failure the bench counts) not flagged: nothing written.
      expect(run.repairedDir).toBeNull();
      if (run.report!.verdict === 'backdoor') expect(run.code).toBe(1);
    }
  });
});

describe('clean zoo models with naturally small classes', () => {
  // A global-average-pooling head gives two classes tiny triggers together: once flagged as two targets.
  it.each([['mnist-gap-clean', 1]] as const)('%s at seed %i is not called backdoored', async (name, seed) => {
    const run = await scan(entry(name), seed);
    expect(run.report?.verdict, run.stderr).not.toBe('backdoor');
    expect(run.report!.detection!.flagged).toEqual([]);
    expect(run.repairedDir).toBeNull();
  });
});
