import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureScanArgs, runCli, runCliShared, withoutTimings } from '../helpers/cli.ts';
import { manifest, MODELS } from '../helpers/fixtures.ts';

// One small MNIST CNN and the 43-class glyph model. mnist-clean-2 and -3 (the same architecture, other
// training seeds) are scanned by the bench over seeds (docs/benchmarks.md), as are the zoo's clean models; the
// suite's other clean models are the six genuine Keras files, the zoo's GAP, LeNet and wide-head ones and ONNX.
const clean = manifest().filter((m) => m.attack === null && !['mnist-clean-2', 'mnist-clean-3'].includes(m.name));

describe('clean fixtures', () => {
  it.each(clean)('$name is reported clean and nothing is written but the report', async (fx) => {
    // sarif.test.ts reads the same run.
    const run = await runCliShared(fixtureScanArgs(join(MODELS, fx.path)));
    expect(run.report?.verdict, run.stderr).toBe('clean');
    expect(run.code).toBe(0);
    expect(run.repairedDir).toBeNull();
    expect(run.report!.detection!.flagged).toEqual([]);
    expect(run.report!.repair!.status).toBe('not-needed');
    expect(run.report!.coverage!.classesScanned).toBe(run.report!.coverage!.classesTotal);
    // The page shows the closest call (the smallest trigger, not flagged) and says what clean does not prove.
    const html = readFileSync(join(run.out, 'report.html'), 'utf8');
    const smallest = [...run.report!.detection!.classes].sort((a, b) => a.comparableNorm - b.comparableNorm || a.class - b.class)[0]!;
    expect(html).toContain(`<h3>Class ${smallest.class}, the smallest trigger (not flagged)</h3>`);
    expect(html.match(/<img alt="(mask|pattern|synthesized input|with the trigger)"/g)).toHaveLength(4);
    expect(html).toMatch(/the model may ship\. Clean is not proof of absence/);
    expect(html).not.toContain('<dt>Reason</dt>');
    // Data-free, the all-to-all check does not run, and both the report and the page say why.
    expect(run.report!.allToAll).toMatchObject({ checked: false, flagged: false });
    expect(run.report!.allToAll!.reason).toMatch(/^data-free scans do not check for all-to-all backdoors/);
    expect(html).toMatch(/<h2>All-to-all check: not run<\/h2>/);
  });
});

describe('determinism', () => {
  it('same model, seed and --max-evals give the same report (timings aside) and the same pruned channels', async () => {
    const args = fixtureScanArgs(join(MODELS, 'mnist-badnets/model.json'));
    // One run is e2e-backdoor's (shared), whichever file starts it; the other is this test's own.
    const a = await runCliShared(args);
    const b = await runCli(args);
    expect(a.report?.verdict).toBe('backdoor');
    expect(withoutTimings(b.report!)).toEqual(withoutTimings(a.report!));
    expect(b.report!.repair!.pruned).toEqual(a.report!.repair!.pruned);
    expect(a.report!.budget.evaluationsUsed).toBeLessThanOrEqual(120000);
  });

  it('an exhausted budget before every class is scanned gives "incomplete", never "clean" (exit code 2)', async () => {
    const run = await runCli(['scan', join(MODELS, 'mnist-clean-1/model.json'), '--out', '$OUT', '--max-evals', '3000']);
    expect(run.report?.verdict).toBe('incomplete');
    expect(run.code).toBe(2);
    expect(run.report!.reason).toMatch(/budget ran out/);
    expect(existsSync(join(run.out, 'repaired'))).toBe(false);
  });
});

describe('model paths', () => {
  it('a TensorFlow.js model folder can be passed instead of its model.json', async () => {
    const run = await runCli(['scan', join(MODELS, 'mnist-clean-1'), '--out', '$OUT', '--max-evals', '20000']);
    expect(run.report!.input).toMatchObject({ format: 'tfjs-layers', entry: 'model.json' });
    expect(run.report!.verdict).not.toBe('error');
  });
});
