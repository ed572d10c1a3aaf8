import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ScanReport } from '../../src/core/output/report.ts';
import { renderReportHtml } from '../../src/core/output/report-html.ts';
import type { ScanOptions } from '../../src/core/scan/options.ts';
import { detectStep, startRuns } from '../../src/core/scan/steps.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { ZOO, zooEntry } from '../helpers/fixtures.ts';
import { trustedSample } from '../helpers/sample.ts';
import { withScanContext } from '../helpers/scan-context.ts';
import { reportSchemaErrors } from '../helpers/schema.ts';
import { TEST_BOUNDS } from '../helpers/scan-bounds.ts';

// Few-shot detection on the trusted sample's images (detection.sampleBases, the default in few-shot mode):
// the trigger reverse that decides the verdict runs on real images instead of synthetic ones. The zoo's
// mnist-lenet-noise4-bl (a 4x4 noise patch on a LeNet) is missed by the mask-size rule on synthetic images
// at seeds 2 to 5 (docs/benchmarks.md, "Detection over five seeds"); turned off, the sample serves the
// repair only, and this seed shows the difference.
const fixture = zooEntry('mnist-lenet-noise4-bl');

/** Detection alone (no repair), few-shot with ten trusted digits per class, with any detection settings. */
async function detectFewShot(detection: ScanOptions['detection']): Promise<{ report: ScanReport; flagged: number[] }> {
  const { files, entry } = await readModelFiles(join(ZOO, fixture.path));
  // Ten per class from test rows the other tests' judgements do not use, as the bench draws them.
  const cleanSample = await trustedSample('mnist', 10);
  const options: ScanOptions = {
    entry,
    seed: 2,
    toolVersion: 'test',
    ...TEST_BOUNDS,
    inputRange: fixture.inputRange,
    cleanSample,
    ...(detection === undefined ? {} : { detection }),
  };
  return withScanContext(files, options, (ctx, out) => {
    const findings = detectStep(ctx, startRuns(ctx));
    return { flagged: findings.flagged.map((t) => t.target), report: out.finish() };
  });
}

let report: ScanReport;
let flagged: number[];
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  ({ report, flagged } = await detectFewShot(undefined));
}, 240_000);

describe("detection on the trusted sample's images (detection.sampleBases, the few-shot default)", () => {
  it("flags the planted target that detection on synthetic images misses, by the sample's own gap bound", () => {
    expect(report.config.detection.sampleBases).toBe(true);
    expect(flagged).toEqual([fixture.attack!.target]);
    const planted = report.detection!.classes[fixture.attack!.target]!;
    expect(planted.flagged).toBe(true);
    expect(planted.normRatio).toBeLessThanOrEqual(report.config.detection.maxNormRatio);
    expect(planted.gap).toBeLessThanOrEqual(report.config.detection.sampleMaxGap);
  });

  it('says the sample served detection, in report.json and on the page, with the bound it used', async () => {
    expect(report.sample!.stages).toContain('detection');
    // The sample's images the model calls their class became the bases, and are counted.
    expect(report.sample!.predictedRight).toBeGreaterThan(60);
    const page = await renderReportHtml({ ...report, verdict: 'backdoor' });
    expect(page).toMatch(/The triggers were reversed on the trusted sample's images/);
    expect(page).toContain(`at most ${report.config.detection.sampleMaxGap} of the next larger class's`);
    // A scan stopped after detection has no verdict yet; the schema is checked with one filled in.
    expect(reportSchemaErrors(JSON.parse(JSON.stringify({ ...report, verdict: 'backdoor' })))).toEqual([]);
  });

  it('turned off, reverses on synthetic images under the data-free bounds, and misses this seed', async () => {
    const off = await detectFewShot({ sampleBases: false });
    expect(off.report.sample!.stages).not.toContain('detection');
    expect(off.flagged).toEqual([]);
    const planted = off.report.detection!.classes[fixture.attack!.target]!;
    expect(planted.normRatio).toBeGreaterThan(off.report.config.detection.maxNormRatio);
    const page = await renderReportHtml({ ...off.report, verdict: 'clean' });
    expect(page).not.toMatch(/The triggers were reversed on the trusted sample's images/);
  }, 240_000);
});
