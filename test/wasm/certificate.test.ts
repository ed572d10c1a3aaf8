import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { attackSuccessRate } from '../data/evaluate.ts';
import { loadFashionMnist } from '../data/fashion.ts';
import { ZOO, zooEntry } from '../helpers/fixtures.ts';
import { forcedPruningScan } from '../helpers/forced-pruning.ts';

// Issue 19's rule on the all-to-one path: a pruning that takes the reversed trigger's route but leaves the
// planted trigger working is never certified. The test/wasm/all-to-all-repair.test.ts twin does the same
// for an all-to-all backdoor.
const m = zooEntry('fashion-small-patch3-br');

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

describe('a pruning that removes the reversed trigger but not the planted one (all-to-one)', () => {
  it('is not certified: the check on held-back real images finds the trigger again, and nothing is written', async () => {
    // Forced where the scan would not go (docs/benchmarks.md, "The few-shot certificate probed with forced
    // prunings"): players in conv2 only, the guard off, the first prefix that brings the reversed trigger's
    // success to 80% and no further. Measured: three channels, 32.8% real ASR left (with triggers reversed on
    // synthetic images, 50% left the same 32.8%, and the check on fresh synthetic images alone passed it;
    // reversed on the sample, as by default, 50% takes a fourth channel and leaves 6.3%).
    const { report, repaired, candidate } = await forcedPruningScan(join(ZOO, m.path), 'fashion', {
      layers: ['conv2'],
      pruning: { maxProbabilityDrop: 1, minValueShare: 1, maxPruneShare: 0.6, maxAsr: 0.8 },
    });
    expect(report.verdict).toBe('backdoor');
    expect(report.detection!.flagged).toEqual([m.attack!.target]);
    expect(report.repair!.pruned.length).toBeGreaterThan(0);
    // The premise: what was pruned leaves the real trigger working on real test images.
    expect(attackSuccessRate(candidate!, loadFashionMnist('test', 2000), m.attack!.trigger, m.attack!.target)).toBeGreaterThan(0.1);
    candidate!.dispose();
    // The rule: refused on the held-back real images, with the evidence in the report, and no files.
    const check = report.repair!.check!;
    expect(check.passed).toBe(false);
    expect(check.heldBack!.images).toBe(30);
    expect(check.heldBack!.targets.map((t) => [t.target, t.removed])).toEqual([[m.attack!.target, false]]);
    expect(report.repair!.status).toBe('not-repaired');
    expect(report.repair!.reason).toMatch(/^the repaired model failed the check on images the repair never saw: .*on the held-back sample/);
    expect(report.repair!.output).toBeNull();
    expect(repaired).toBeNull();
  }, 300_000);
});
