import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/core/sample/decode.ts';
import { loadMnist } from '../data/mnist.ts';
import { drawRows, TEST_SAMPLE_FROM, trustedSample } from '../helpers/sample.ts';

const perClassCounts = (paths: string[]) => {
  const counts = new Map<string, number>();
  for (const p of paths) counts.set(p.split('/')[0]!, (counts.get(p.split('/')[0]!) ?? 0) + 1);
  return [...counts.values()];
};

// Every table and test that says "ten trusted images per class" must mean one rule's images; the
// acceptance's training-split draws must change with the seed, or five seeds hide the sample's variance.
describe('the trusted-sample draw', () => {
  it('takes the first images of each class in the order given, and no more', () => {
    const set = { labels: Uint8Array.from([0, 1, 0, 2, 1, 0, 2, 2]), classes: 3 };
    expect(drawRows(set, 2, [0, 1, 2, 3, 4, 5, 6, 7])).toEqual([0, 1, 2, 3, 4, 6]);
    expect(drawRows(set, 1, [7, 6, 5, 4])).toEqual([7, 5, 4]);
  });

  it('draws the test split from row 5000 on, never the rows tests and benches judge', async () => {
    const set = loadMnist('test');
    const files = await trustedSample('mnist', 10);
    expect(perClassCounts(files.map((f) => f.path))).toEqual(new Array(10).fill(10));
    const first = files[0]!;
    expect(first.path).toBe(`${set.labels[TEST_SAMPLE_FROM]}/0.png`);
    const decoded = await decodeImage(first.path, first.bytes);
    expect(decoded.channels).toBe(1);
    expect(Array.from(decoded.data, (v) => Math.round(v * 255))).toEqual(
      Array.from(set.images.subarray(TEST_SAMPLE_FROM * 784, (TEST_SAMPLE_FROM + 1) * 784), (v) => Math.round(v * 255)),
    );
  });

  it('draws the training split by seed: the same seed the same images, another seed others', async () => {
    const bytes = async (seed: number) =>
      (await trustedSample('mnist', 3, { split: 'train', seed })).map((f) => Buffer.from(f.bytes).toString('base64'));
    const [a, again, b] = [await bytes(1), await bytes(1), await bytes(2)];
    expect(a).toEqual(again);
    expect(a).toHaveLength(30);
    expect(a.filter((x) => b.includes(x)).length).toBeLessThan(3);
    const test = (await trustedSample('mnist', 3)).map((f) => Buffer.from(f.bytes).toString('base64'));
    expect(a.filter((x) => test.includes(x))).toEqual([]);
  });
});
