import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ScanReport } from '../../src/core/output/report.ts';
import { scanModel } from '../../src/core/scan/scan.ts';
import type { ScanOptions } from '../../src/core/scan/options.ts';
import { synthesizeStep } from '../../src/core/scan/steps.ts';
import type { SynthResult } from '../../src/core/stages/synthesis/synth.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { MODELS } from '../helpers/fixtures.ts';
import { withScanContext } from '../helpers/scan-context.ts';
import { reportSchemaErrors } from '../helpers/schema.ts';
import { TEST_BOUNDS } from '../helpers/scan-bounds.ts';

// Multi-resolution synthesis (SynthConfig.resolution, opt-in): the images are a coarser grid enlarged to the
// input size. Measured and not the default (docs/benchmarks.md); tested for what it promises.
const model = join(MODELS, 'mnist-badnets/model.json');

/** Mean absolute difference between horizontally adjacent pixels: how much pixel-level detail there is. */
function roughness(images: Float32Array, count: number, h = 28, w = 28): number {
  let sum = 0;
  for (let n = 0; n < count; n++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x + 1 < w; x++) sum += Math.abs(images[n * h * w + y * w + x + 1]! - images[n * h * w + y * w + x]!);
  return sum / (count * h * (w - 1));
}

async function synth(resolution: number): Promise<{ synth: SynthResult; report: ScanReport }> {
  const { files, entry } = await readModelFiles(model);
  const options: ScanOptions = { entry, seed: 1, toolVersion: 'test', ...TEST_BOUNDS, synthesis: { resolution } };
  return withScanContext(files, options, (ctx, out) => {
    const made = synthesizeStep(ctx, 0);
    return { synth: made, report: out.finish() };
  });
}

let full: SynthResult;
let coarse: SynthResult;
let coarseReport: ScanReport;
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  full = (await synth(1)).synth;
  ({ synth: coarse, report: coarseReport } = await synth(0.25));
});

describe('synthesis at a quarter of the input resolution', () => {
  it('still makes images the model confidently calls their class, of the input size', () => {
    expect(coarse.confident).toBe(1);
    expect(coarse.rev.images.length).toBe(full.rev.images.length);
  });

  it('has far less pixel-level detail than synthesis at full resolution, from the same seed', () => {
    expect(roughness(coarse.rev.images, coarse.rev.count)).toBeLessThan(roughness(full.rev.images, full.rev.count) / 2);
  });

  it('is recorded with the other synthesis settings, as the schema describes', () => {
    expect(coarseReport.config.synthesis.resolution).toBe(0.25);
    // A scan stopped after synthesis has no verdict yet; the schema is checked with one filled in.
    expect(reportSchemaErrors(JSON.parse(JSON.stringify({ ...coarseReport, verdict: 'clean' })))).toEqual([]);
  });

  it('refuses a resolution outside (0, 1] by name, before loading the model', async () => {
    const { files, entry } = await readModelFiles(model);
    for (const resolution of [0, 1.5, NaN]) {
      const { report, repaired } = await scanModel(files, {
        entry,
        seed: 1,
        toolVersion: 'test',
        ...TEST_BOUNDS,
        synthesis: { resolution },
      });
      expect(report.verdict).toBe('error');
      expect(report.reason).toBe(`synthesis.resolution ${resolution}: give a share of the input's size in (0, 1]`);
      expect(report.input).toBeNull();
      expect(repaired).toBeNull();
    }
  });
});
