import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/core/model/load.ts';
import { describeModel, playerLayers } from '../../src/core/model/model-info.ts';
import { PlayerSet } from '../../src/core/stages/players.ts';
import { BackdoorGame, TailEvaluator } from '../../src/core/stages/shapley/backdoor-game.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import type { AllToAllZooEntry } from '../../tools/fixtures/zoo.ts';
import { allToAllSuccessRate } from '../data/evaluate.ts';
import { loadMnist } from '../data/mnist.ts';
import { forcedPruningScan } from '../helpers/forced-pruning.ts';

// The all-to-all repair's two halves below the CLI: its Shapley game over several pairs at once, and the
// rule that a pruning is never certified unless the whole pair check, run again on held-back images, finds
// no mapping left.
const ZOO = 'test/fixtures/zoo';
const fixture = (name: string) =>
  (JSON.parse(readFileSync(join(ZOO, 'all-to-all.json'), 'utf8')) as AllToAllZooEntry[]).find((m) => m.name === name)!;

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

describe('the backdoor game over several stamped parts', () => {
  it("is each part's target probability, weighed by its rows, and one part is the all-to-one game", async () => {
    const m = fixture('mnist-lenet-a2a-next-patch4-tr');
    const { files, entry } = await readModelFiles(join(ZOO, m.path));
    const loaded = await loadModel(files, entry);
    const info = describeModel(loaded.model);
    const players = new PlayerSet(info, playerLayers(info));
    const digits = loadMnist('test', 30);
    const px = 784;
    const a = new TailEvaluator(info, players, digits.images.slice(0, 10 * px));
    const b = new TailEvaluator(info, players, digits.images.slice(10 * px, 30 * px));
    const coalitions = [new Uint8Array(players.size).fill(1), Uint8Array.from({ length: players.size }, (_, k) => k % 2)];
    const meanOf = (t: TailEvaluator, target: number) => {
      const p = t.probabilities(coalitions);
      const rows = Array.from(p.dataSync());
      p.dispose();
      return coalitions.map((_, j) => {
        let sum = 0;
        for (let r = 0; r < t.rows; r++) sum += rows[(j * t.rows + r) * 10 + target]!;
        return sum / t.rows;
      });
    };
    const [va, vb] = [meanOf(a, 3), meanOf(b, 7)];
    const both = new BackdoorGame([
      { tail: a, target: 3 },
      { tail: b, target: 7 },
    ]).evaluate(coalitions);
    coalitions.forEach((_, j) => expect(both[j]).toBeCloseTo((10 * va[j]! + 20 * vb[j]!) / 30, 5));
    // Its cost is the parts' together; one part alone is that part's own game.
    new BackdoorGame([{ tail: a, target: 3 }]).evaluate(coalitions).forEach((v, j) => expect(v).toBeCloseTo(va[j]!, 6));
    expect(both[0]).not.toBeCloseTo(both[1]!, 3);
    expect(
      new BackdoorGame([
        { tail: a, target: 3 },
        { tail: b, target: 7 },
      ]).cost(4),
    ).toBeCloseTo(a.cost(4) + b.cost(4), 9);
    a.dispose();
    b.dispose();
    loaded.model.dispose();
  });
});

describe('a pruning that leaves the planted all-to-all trigger working', () => {
  it('is not certified: the pair check on held-back images finds the mapping again, and nothing is written', async () => {
    // The zoo's pixel all-to-all LeNet: measured with the real trigger, no four of its players remove it
    // (docs/benchmarks.md). A bound of 100% on the reversed triggers' success makes the first prefix "remove"
    // them, so only the check after the prune stands between this pruning and a certificate.
    const m = fixture('mnist-lenet-a2a-next-pixel-br');
    const { report, repaired, candidate } = await forcedPruningScan(join(ZOO, m.path), 'mnist', { pruning: { maxAsr: 1 } });
    expect(report.verdict).toBe('backdoor');
    expect(report.allToAll!.flagged).toBe(true);
    expect(report.repair!.pruned.length).toBeGreaterThan(0);
    // The premise: what was pruned leaves the real trigger working on real test digits.
    expect(allToAllSuccessRate(candidate!, loadMnist('test', 1000), m.attack.trigger, m.attack.mapping)).toBeGreaterThan(0.5);
    candidate!.dispose();
    // The rule: refused, with the check's evidence, and no repaired files.
    const check = report.allToAll!.repairCheck!;
    expect(check.passed).toBe(false);
    expect(check.score).toBeGreaterThanOrEqual(report.config.allToAll.minScore);
    expect(check.original).toBeGreaterThanOrEqual(report.config.allToAll.minScore);
    expect(report.repair!.status).toBe('not-repaired');
    expect(report.repair!.reason).toMatch(
      /^the pruned model failed the all-to-all check on held-back images: fresh pair triggers still carry a mapping/,
    );
    expect(report.repair!.output).toBeNull();
    expect(repaired).toBeNull();
  }, 300_000);
});
