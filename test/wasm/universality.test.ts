import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/core/model/load.ts';
import { describeModel } from '../../src/core/model/model-info.ts';
import { exitCodeFor } from '../../src/core/output/report.ts';
import { renderReportHtml } from '../../src/core/output/report-html.ts';
import { toSarif } from '../../src/core/output/sarif.ts';
import { scanModel, UNIVERSAL_NOT_REPAIRED } from '../../src/core/scan/scan.ts';
import { ALL_TO_ALL_DEFAULTS, universalTarget, universality } from '../../src/core/stages/detection/pairs.ts';
import type { ReversedTrigger } from '../../src/core/stages/trigger/reverse.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { attackSuccessRate } from '../data/evaluate.ts';
import { loadMnist } from '../data/mnist.ts';
import { stamp, type Trigger } from '../data/triggers.ts';
import { manifest, MODELS, ZOO, zooEntry } from '../helpers/fixtures.ts';
import { trustedSample } from '../helpers/sample.ts';
import { TEST_BOUNDS } from '../helpers/scan-bounds.ts';

// The pair check's second signal (few-shot): a class every other class's pair trigger carries into. Its
// measure on a planted trigger, and the scan on issue 19's measured case (wide Dense head, logits, raw
// 0-255 input, 4x4 patch), which the mask-size rule misses, beside its clean twin.

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

/** A planted white trigger as a reversed one: the mask where it stamps, the pattern white. */
function asReversed(trigger: Trigger, source: number, target: number): ReversedTrigger {
  const mask = stamp(new Float32Array(28 * 28), [28, 28, 1], trigger);
  return {
    target,
    source,
    norm: mask.reduce((a, b) => a + b, 0),
    reached: true,
    success: 1,
    steps: 0,
    refined: false,
    finished: true,
    screenNorm: null,
    restartNorm: null,
    mask,
    pattern: new Float32Array(28 * 28).fill(1),
  };
}

describe('how universally pair triggers carry (universality)', () => {
  it('reads the planted trigger as universal into its target, and the same mask aimed elsewhere as nothing', async () => {
    const fixture = manifest().find((x) => x.name === 'mnist-badnets')!;
    const { files, entry } = await readModelFiles(join(MODELS, 'mnist-badnets/model.json'));
    const loaded = await loadModel(files, entry);
    const info = describeModel(loaded.model);
    const digits = loadMnist('test', 200);
    const batch = { images: digits.images, labels: Int32Array.from(digits.labels), count: digits.count };
    const { target, trigger } = fixture.attack!;
    const wrong = (target + 3) % 10;
    // Pairs into the planted target from every source, and the same mask "into" another class.
    const triggers = Array.from({ length: 10 }, (_, s) => s).flatMap((s) => [
      ...(s === target ? [] : [asReversed(trigger, s, target)]),
      ...(s === wrong ? [] : [asReversed(trigger, s, wrong)]),
    ]);
    const { into, universal } = universality(info.graph, info.shape, batch, triggers, 10, 64);
    // The same trigger on the same images gives one share per target whatever the source: the images of
    // every class but the source and the target.
    for (let s = 0; s < 10; s++) if (s !== target) expect(into[s]![target]).toBeGreaterThan(0.9);
    expect(universal[target]).toBeGreaterThan(0.9);
    expect(universal[wrong]).toBeLessThan(0.05);
    // Classes no pair went into are not measured, and the diagonal never is.
    for (let t = 0; t < 10; t++) expect(Number.isNaN(into[t]![t]!)).toBe(true);
    expect(universal.filter((u) => !Number.isNaN(u))).toHaveLength(2);
    expect(universalTarget(universal, ALL_TO_ALL_DEFAULTS)).toBe(target);
    loaded.model.dispose();
  }, 60_000);
});

describe("the universality signal in a few-shot scan (issue 19's measured case)", () => {
  const scanFewShot = async (name: string) => {
    const m = zooEntry(name);
    const { files, entry } = await readModelFiles(join(ZOO, m.path));
    const cleanSample = await trustedSample('mnist', 10);
    return {
      m,
      files,
      entry,
      ...(await scanModel(files, { entry, seed: 1, toolVersion: 'test', ...TEST_BOUNDS, inputRange: m.inputRange, cleanSample })),
    };
  };

  it('flags the planted target the mask-size rule misses, and certifies no repair (exit 1, nothing written)', async () => {
    const { m, files, entry, report, repaired, evidence } = await scanFewShot('mnist-widehead-logits255-patch4');
    // The premise: a working backdoor (real ASR on real test digits), which no class's mask singles out.
    const original = (await loadModel(files, entry)).model;
    expect(attackSuccessRate(original, loadMnist('test', 1000), m.attack!.trigger, m.attack!.target, 255)).toBeGreaterThan(0.9);
    original.dispose();
    expect(report.detection!.classes.every((c) => !c.flagged)).toBe(true);
    // The pair check finds it by how far its pair triggers carry.
    expect(report.allToAll!.checked).toBe(true);
    expect(report.allToAll!.flagged).toBe(false);
    expect(report.allToAll!.universalTarget).toBe(m.attack!.target);
    const u = report.allToAll!.universal!.map((x) => x ?? 0);
    const top = u[m.attack!.target]!;
    expect(top).toBeGreaterThanOrEqual(report.config.allToAll.minUniversal);
    expect(Math.max(...u.filter((_, t) => t !== m.attack!.target))).toBeLessThanOrEqual(top / report.config.allToAll.universalRatio);
    expect(report.verdict).toBe('backdoor');
    expect(exitCodeFor(report.verdict)).toBe(1);
    expect(report.detection!.flagged).toEqual([m.attack!.target]);
    expect(report.detection!.flaggedBy).toBe('pair-universality');
    // No check here can stand behind a repair of what it found: not repaired, said why, nothing written.
    expect(report.repair!.status).toBe('not-repaired');
    expect(report.repair!.reason).toBe(UNIVERSAL_NOT_REPAIRED);
    expect(report.repair!.output).toBeNull();
    expect(repaired).toBeNull();
    // The reviewer's page and the code-scanning result say which signal found it, and the page shows the
    // pair trigger that found it (not the mask-size search's closest call).
    expect(evidence.map((e) => [e.target, e.flagged])).toEqual([[m.attack!.target, true]]);
    const source = evidence[0]!.source!;
    const into = report.allToAll!.norms.map((_, s) => s).filter((s) => s !== m.attack!.target);
    expect(into).toContain(source);
    const page = await renderReportHtml(report, { evidence });
    expect(page).toContain(`<h3>Target ${m.attack!.target}: the pair trigger from class ${source} that carries furthest</h3>`);
    expect(page).not.toContain('the smallest trigger (not flagged)');
    expect(page).toContain(`<h2>All-to-all check: class ${m.attack!.target} flagged (universal)</h2>`);
    expect(page).toContain('<tr id="universality"><th>carries into</th>');
    expect(page).toMatch(/A backdoor sends images carrying a trigger to class 3 \(found by how far the pair triggers carry into it/);
    // Already few-shot: the advice does not send the user back for a sample.
    expect(page).not.toMatch(/scan again with a trusted sample/);
    const [result] = toSarif(report, 'model.json').runs[0]!.results;
    expect(result!.message.text).toMatch(/^Backdoor detected: the other classes' pair triggers carry into class 3 \(median share 0\.\d+\)/);
  }, 300_000);

  it('leaves its clean twin (same architecture, recipe and range) clean', async () => {
    const { report } = await scanFewShot('mnist-widehead-logits255-clean');
    expect(report.allToAll!.checked).toBe(true);
    expect(report.allToAll!.universalTarget).toBeNull();
    expect(report.verdict).toBe('clean');
    expect(report.detection!.flagged).toEqual([]);
    expect(report.detection!.flaggedBy).toBeNull();
    // No repair ran, but detection and the pair check chose their bases by the model's classes of the
    // sample: the record says how many it called right (a well-trained digit model, nearly all).
    expect(report.repair!.status).toBe('not-needed');
    expect(report.sample!.stages).toEqual(['detection', 'all-to-all']);
    expect(report.sample!.predictedRight).toBeGreaterThanOrEqual(0.9 * report.sample!.used);
  }, 300_000);
});
