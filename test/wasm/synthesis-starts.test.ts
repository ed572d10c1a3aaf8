import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ScanReport } from '../../src/core/output/report.ts';
import { scanModel } from '../../src/core/scan/scan.ts';
import type { ScanOptions } from '../../src/core/scan/options.ts';
import { detectStep, startRuns } from '../../src/core/scan/steps.ts';
import { combinedNorms, medianShares } from '../../src/core/stages/detection/detect.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { MODELS } from '../helpers/fixtures.ts';
import { withScanContext } from '../helpers/scan-context.ts';
import { reportSchemaErrors } from '../helpers/schema.ts';
import { TEST_BOUNDS } from '../helpers/scan-bounds.ts';

// Several synthesis starts (SynthConfig.starts): one synthesis and one trigger reverse per start background,
// the classes weighed over all of them. Bounded by evaluations, far above what either start uses.
let one: ScanReport;
let two: ScanReport;
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const { files, entry } = await readModelFiles(join(MODELS, 'mnist-badnets/model.json'));
  // The scan up to its verdict: the repair after it does not depend on how many starts there were.
  const scan = async (starts: number[]) => {
    const options: ScanOptions = { entry, seed: 1, toolVersion: 'test', ...TEST_BOUNDS, synthesis: { starts } };
    return withScanContext(files, options, (ctx, out) => {
      detectStep(ctx, startRuns(ctx));
      return out.finish();
    });
  };
  one = await scan([0]);
  two = await scan([0, -2.5]);
});

describe('synthesis starts', () => {
  it('runs a synthesis and a trigger reverse per start, and records each start', () => {
    expect(reportSchemaErrors(JSON.parse(JSON.stringify({ ...two, verdict: 'backdoor' })))).toEqual([]);
    const names = two.budget.stages.map((s) => s.name);
    expect(names.slice(0, 4)).toEqual(['synthesis', 'trigger-reverse', 'synthesis-start-2', 'trigger-reverse-start-2']);
    expect(two.detection!.starts.map((s) => s.background)).toEqual([0, -2.5]);
    expect(one.detection!.starts).toHaveLength(1);
    // The dark start's masks are far smaller: a different start, not a copy of the first.
    expect(two.detection!.starts[1]!.median).toBeLessThan(two.detection!.starts[0]!.median / 2);
  });

  it('the first start is the one-start scan, while neither bound cut it', () => {
    expect(two.budget.stages[0]!.stoppedBy).toBe(one.budget.stages[0]!.stoppedBy);
    expect(two.detection!.starts[0]).toEqual(one.detection!.starts[0]);
    // With one start the detection compares that start's own norms.
    expect(one.detection!.classes.map((c) => c.comparableNorm)).toEqual(one.detection!.starts[0]!.comparableNorms);
  });

  it('weighs every class over the starts and reports the trigger of the start where it is smallest', () => {
    const starts = two.detection!.starts;
    const combined = combinedNorms(starts.map((s) => s.comparableNorms));
    const shares = starts.map((s) => medianShares(s.comparableNorms));
    for (const c of two.detection!.classes) {
      expect(c.comparableNorm).toBeCloseTo(combined[c.class]!, 4);
      const best = shares[c.start]![c.class]!;
      for (const sh of shares) expect(best).toBeLessThanOrEqual(sh[c.class]!);
    }
    expect(two.detection!.flagged).toEqual([6]);
    expect(one.detection!.flagged).toEqual([6]);
  });

  it('refuses no start or a start that is not a number, by name, before loading the model', async () => {
    const { files, entry } = await readModelFiles(join(MODELS, 'mnist-badnets/model.json'));
    for (const starts of [[], [0, NaN]]) {
      const { report, repaired } = await scanModel(files, { entry, seed: 1, toolVersion: 'test', ...TEST_BOUNDS, synthesis: { starts } });
      expect(report.verdict).toBe('error');
      expect(report.reason).toBe(`synthesis.starts [${starts.join(', ')}]: give at least one finite background`);
      expect(report.input).toBeNull();
      expect(repaired).toBeNull();
    }
  });
});
