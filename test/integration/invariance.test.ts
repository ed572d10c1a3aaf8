import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ScanReport } from '../../src/core/output/report.ts';
import { playerKey } from '../../src/core/stages/players.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { fixtureScanArgs, runCli, runCliShared } from '../helpers/cli.ts';
import { MODELS } from '../helpers/fixtures.ts';
import { rescaledCopy } from '../helpers/rescale.ts';
import { writeTinyModel } from '../helpers/tiny-model.ts';

// A model's logits can be multiplied by any positive factor without changing one prediction: the scan must
// not change either (it normalises them), and a model it cannot make sense of is "incomplete", never "clean".
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

/** A model folder scanned as the fixtures are (fixtureScanArgs), by the CLI. */
async function scan(dir: string): Promise<ScanReport> {
  const run = await runCli(fixtureScanArgs(join(dir, 'model.json')));
  expect(run.report, run.stderr).not.toBeNull();
  return run.report!;
}

/** What a verdict consists of: the verdict, the flagged classes and what was pruned. */
const verdictOf = (r: ScanReport) => ({
  verdict: r.verdict,
  flagged: r.detection?.flagged,
  repair: r.repair?.status,
  pruned: r.repair?.pruned.map(playerKey),
});

describe('logit scale', () => {
  it('a backdoored model with its logits ×100 or ×0.01 scans as the original: same target, same repair', async () => {
    const dir = join(MODELS, 'mnist-badnets');
    // The original's run is the one the end-to-end files judge (shared).
    const original = (await runCliShared(fixtureScanArgs(join(dir, 'model.json')))).report!;
    expect(original.verdict).toBe('backdoor');
    for (const factor of [100, 0.01]) {
      const rescaled = await scan(await rescaledCopy(dir, factor));
      expect(verdictOf(rescaled), `×${factor}`).toEqual(verdictOf(original));
      // Float rounding differs with the scale; the masks come out about the same size all the same.
      expect(Math.abs(rescaled.detection!.median / original.detection!.median - 1)).toBeLessThan(0.05);
    }
  });

  it('a clean model ×100 is clean', async () => {
    const report = await scan(await rescaledCopy(join(MODELS, 'mnist-clean-1'), 100));
    expect(report.verdict).toBe('clean');
  });

  it('an untrained CNN is incomplete, never clean', async () => {
    const report = await scan(await writeTinyModel());
    expect(report.verdict).toBe('incomplete');
    expect(report.reason).toMatch(/synthesis reached confidence|no reversed trigger reached/);
  });
});
