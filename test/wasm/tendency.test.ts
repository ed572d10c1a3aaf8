import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Budget } from '../../src/core/budget.ts';
import { describeModel, type ModelInfo } from '../../src/core/model/model-info.ts';
import { DETECT_DEFAULTS, type DetectConfig } from '../../src/core/stages/detection/detect.ts';
import type { ScanReport } from '../../src/core/output/report.ts';
import { headCut, measureTendency, TENDENCY_STEPS, type Tendency } from '../../src/core/stages/detection/tendency.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { Rng } from '../../src/core/util/rng.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { loadModelFromDisk } from '../data/load-dir.ts';
import { MODELS } from '../helpers/fixtures.ts';
import { rescaledCopy } from '../helpers/rescale.ts';
import { readDir, writeTinyModel } from '../helpers/tiny-model.ts';
import { withScanContext } from '../helpers/scan-context.ts';
import { detectBackdoor } from '../../src/core/scan/scan.ts';

// The head tendency (opt-in) on real models: mnist-patch4's planted 4×4 patch reverses to a mask no smaller than
// natural ones (data-free mask size misses it), but its head leans to the planted class 2.
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

const CFG = { ...DETECT_DEFAULTS, tendencySteps: TENDENCY_STEPS };

/** Images in [0, 1] standing in for the synthesis's: they only tell whether the head's input follows a ReLU. */
function bases(info: ModelInfo): Float32Array {
  const rng = new Rng(9);
  return Float32Array.from({ length: 8 * info.shape[0] * info.shape[1] * info.shape[2] }, () => rng.next());
}

async function tendencyOf(dir: string, maxEvals = Infinity): Promise<Tendency> {
  const model = await loadModelFromDisk(join(dir, 'model.json'));
  try {
    const info = describeModel(model);
    info.graph.inputRange = [0, 1];
    // Bounded by evaluations only: a loaded machine must give the same answer.
    const stage = new Budget(1e9, maxEvals).stage(1);
    const t = measureTendency(info, bases(info), CFG, new Rng(1).fork(80), stage);
    expect(t).not.toBeNull();
    return t!;
  } finally {
    model.dispose();
  }
}

describe('head tendency', () => {
  let patch: Tendency;
  beforeAll(async () => {
    patch = await tendencyOf(join(MODELS, 'mnist-patch4'));
  });

  it("leans to mnist-patch4's planted class, and a clean model's head stands out less", async () => {
    expect(patch.target).toBe(2);
    expect(patch.anomaly).toBeGreaterThanOrEqual(DETECT_DEFAULTS.tendencyMinAnomaly);
    expect(patch.steps).toBe(TENDENCY_STEPS);
    expect(patch.stoppedBy).toBeNull();
    const clean = await tendencyOf(join(MODELS, 'mnist-clean-1'));
    expect(clean.anomaly).toBeLessThan(DETECT_DEFAULTS.tendencyMinAnomaly);
  });

  it('reads the same with the logits ×100', async () => {
    const scaled = await tendencyOf(await rescaledCopy(join(MODELS, 'mnist-patch4'), 100));
    expect(scaled.target).toBe(patch.target);
    expect(Math.abs(scaled.anomaly - patch.anomaly)).toBeLessThan(0.01);
  });

  it('stops at the evaluation bound and says so', async () => {
    const cut = await tendencyOf(join(MODELS, 'mnist-patch4'), 50);
    expect(cut.stoppedBy).toBe('evaluations');
    expect(cut.steps).toBeLessThan(TENDENCY_STEPS);
  });

  it('finds the head of a residual net, after its global pooling', async () => {
    const model = await loadModelFromDisk('test/fixtures/zoo/mnist-resnet-clean/model.json');
    try {
      const info = describeModel(model);
      const cut = headCut(info);
      expect(cut).not.toBeNull();
      expect(info.graph.steps[cut!.step]!.layer.getClassName()).toBe('Dense');
    } finally {
      model.dispose();
    }
  });
});

/** The scan's detection (detectBackdoor, where the verdict is decided) on a model folder: its verdict and report. */
async function detectOn(dir: string, detection: Partial<DetectConfig>): Promise<{ verdict: string; report: ScanReport }> {
  const options = { entry: 'model.json', seed: 1, toolVersion: 'test', maxEvals: 40_000, budgetSeconds: 100_000, detection };
  return withScanContext(readDir(dir), options, (ctx, out) => ({ verdict: detectBackdoor(ctx).verdict, report: out.report }));
}

describe("the scan's detection with the head tendency", () => {
  // Wiring only, on a tiny untrained CNN, with a size rule that flags nothing (maxNormRatio 0) and bounds that
  // let any favourite through: the efficacy on a real model is the first test above, over the zoo the bench's
  // (the same detection of mnist-patch4 takes 30 s).
  it('opted in, flags the class the head leans to where the mask size flagged nothing, and says so', async () => {
    const dir = await writeTinyModel();
    const on = await detectOn(dir, {
      maxNormRatio: 0,
      tendencySteps: TENDENCY_STEPS,
      tendencyMinAnomaly: -Infinity,
      tendencyMaxNormRatio: Infinity,
    });
    const d = on.report.detection!;
    expect(d.tendency).not.toBeNull();
    expect(d.tendency!.steps).toBe(TENDENCY_STEPS);
    expect(on.verdict).toBe('backdoor');
    expect(d.flagged).toEqual([d.tendency!.target]);
    expect(d.flaggedBy).toBe('head-tendency');
    // Off (the default), the same detection records no tendency and flags nothing.
    const off = await detectOn(dir, { maxNormRatio: 0 });
    expect(off.report.detection!.tendency).toBeNull();
    expect(off.report.detection!.flagged).toEqual([]);
  });
});
