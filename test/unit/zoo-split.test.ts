import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadFashionMnist } from '../data/fashion.ts';
import { loadMnist } from '../data/mnist.ts';
import { stamp } from '../data/triggers.ts';
import { poison } from '../../tools/fixtures/train.ts';
import { ALL_TO_ALL, halfOf, ZOO, type AllToAllZooEntry, type ZooEntry } from '../../tools/fixtures/zoo.ts';

const ZOO_DIR = 'test/fixtures/zoo';

describe('the zoo split', () => {
  it('the all-to-all list leaves every built all-to-one model in the half and seed its manifest records', () => {
    const built = JSON.parse(readFileSync(join(ZOO_DIR, 'manifest.json'), 'utf8')) as ZooEntry[];
    expect(built.length).toBeGreaterThan(30);
    for (const m of built) {
      const spec = ZOO.find((s) => s.name === m.name)!;
      expect(spec, m.name).toBeDefined();
      expect([m.name, halfOf(spec), spec.seed]).toEqual([m.name, m.half, m.seed]);
    }
  });

  it('records every built all-to-all model with the half, seed, epochs and attack its spec gives (a spec changed without a rebuild fails here)', () => {
    const built = JSON.parse(readFileSync(join(ZOO_DIR, 'all-to-all.json'), 'utf8')) as AllToAllZooEntry[];
    expect(built.map((m) => m.name)).toEqual(ALL_TO_ALL.map((s) => s.name));
    for (const m of built) {
      const spec = ALL_TO_ALL.find((s) => s.name === m.name)!;
      expect([m.half, m.seed, m.epochs, m.attack]).toEqual([halfOf(spec, ALL_TO_ALL), spec.seed, spec.epochs, spec.attack]);
    }
  });

  it('splits the all-to-all models within each dataset, alternating, the first to tuning', () => {
    for (const dataset of ['mnist', 'glyphs'] as const) {
      const halves = ALL_TO_ALL.filter((s) => s.dataset === dataset).map((s) => halfOf(s, ALL_TO_ALL));
      expect(halves.length).toBeGreaterThanOrEqual(2);
      halves.forEach((h, i) => expect(h).toBe(i % 2 === 0 ? 'tuning' : 'held-out'));
    }
  });

  it('gives every all-to-all class another target, and every target one source (a derangement)', () => {
    for (const s of ALL_TO_ALL) {
      const k = s.dataset === 'glyphs' ? 43 : 10;
      expect(s.attack.mapping, s.name).toHaveLength(k);
      expect(new Set(s.attack.mapping).size, s.name).toBe(k);
      s.attack.mapping.forEach((t, y) => expect(t !== y && t >= 0 && t < k, `${s.name}: ${y} → ${t}`).toBe(true));
    }
  });
});

describe('poisoning', () => {
  it('leaves the loaded clean set untouched, for MNIST and Fashion-MNIST alike', () => {
    for (const set of [loadMnist('train', 500), loadFashionMnist('train', 500)]) {
      const before = Array.from(set.labels);
      const out = poison(set, { trigger: { kind: 'pixels', points: [[1, 1]], color: [1] }, target: 3, rate: 0.2 }, 11);
      expect(Array.from(set.labels)).toEqual(before);
      expect(out.labels.filter((l, i) => l !== before[i]).length).toBeGreaterThan(50);
    }
  });
});

describe('all-to-all poisoning', () => {
  it('stamps the chosen share of real digits and relabels each by its own class, leaving the rest as they were', () => {
    const set = loadMnist('test', 200);
    const spec = ALL_TO_ALL.find((s) => s.name === 'mnist-small-a2a-perm-patch3-bl')!;
    const attack = { ...spec.attack, rate: 0.25 };
    const labelsBefore = Array.from(set.labels);
    const imagesBefore = set.images.slice();
    const out = poison(set, attack, 7);
    // The clean set is the caller's: a training run that poisons one model's copy must leave it as it was
    // (the loaders' labels were once Node Buffers, whose slice() shares memory, and every poisoning rewrote
    // the cached clean labels of the models built after it).
    expect(Array.from(set.labels)).toEqual(labelsBefore);
    expect(set.images).toEqual(imagesBefore);
    const px = 28 * 28;
    let stamped = 0;
    for (let i = 0; i < set.count; i++) {
      const before = set.images.subarray(i * px, (i + 1) * px);
      const after = out.images.subarray(i * px, (i + 1) * px);
      const changed = out.labels[i] !== set.labels[i];
      if (changed) {
        stamped++;
        expect(out.labels[i]).toBe(attack.mapping[set.labels[i]!]);
        expect(Array.from(after)).toEqual(Array.from(stamp(before, set.shape, attack.trigger)));
      } else expect(Array.from(after)).toEqual(Array.from(before));
    }
    // A derangement relabels every stamped image, so the changed labels count the stamped images.
    expect(stamped).toBe(50);
  });
});
