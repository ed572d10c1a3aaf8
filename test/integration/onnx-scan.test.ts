import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ScanReport } from '../../src/core/output/report.ts';
import type { Player } from '../../src/core/stages/players.ts';
import { loadMnist } from '../data/mnist.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { loadModelFromDisk } from '../data/load-dir.ts';
import { describeModel, playerLayers } from '../../src/core/model/model-info.ts';
import { playerLayerName } from '../../src/core/stages/players.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { judgeOnnx, onnxCheck } from '../helpers/onnx.ts';
import { sampleDir } from '../helpers/sample.ts';
import type { OnnxManifestEntry } from '../../tools/fixtures/build-onnx.ts';

// Judged on real test images with the really planted trigger, run by onnxruntime on the file the scan wrote.
const ONNX = resolve('test/fixtures/onnx');
const fixtures = JSON.parse(readFileSync(join(ONNX, 'manifest.json'), 'utf8')) as OnnxManifestEntry[];
const backdoored = fixtures.find((f) => f.name === 'mnist-badnets-o13')!;
const clean = fixtures.find((f) => f.name === 'mnist-clean-o17-nofold')!;

/**
 * A player as its place in the graph, not its name: the ONNX model's layers are named after PyTorch's nodes
 * ("conv2_conv"), its twin's after Keras layers ("conv2"); the same player is the same channel or position
 * of the same (k-th) Conv2D or Dense layer.
 */
function place(report: ScanReport, p: Player): string {
  const layers = report.model!.playerLayers.map((l) => l.replace(/:positions$/, ''));
  return `${layers.indexOf(p.layer)}:${p.channel ?? p.position!.join(',')}`;
}

describe('scanning ONNX models (few-shot, 10 real images per class; the twin holds the same weights as tfjs-layers)', () => {
  let onnx: CliRun;
  let twinPlayerLayers: string[];
  beforeAll(async () => {
    const sample = await sampleDir('mnist', 10);
    onnx = await runCli(['scan', join(ONNX, backdoored.path), '--out', '$OUT', '--seed', '1', '--clean-samples', sample]);
    // The twin's players without a scan of its own (a second few-shot scan cost a minute of CI's CPU): the
    // ONNX graph must offer the scan the same players, layer by layer, as the Keras model it was exported as.
    await initWasmBackend({ wasmPath: nodeWasmPath() });
    const twin = await loadModelFromDisk(join(ONNX, `${backdoored.name}-twin`, 'model.json'));
    twinPlayerLayers = playerLayers(describeModel(twin)).map(playerLayerName);
    twin.dispose();
  });

  it('flags the planted target and repairs it, with the players of its tfjs twin in the same places', () => {
    const a = onnx.report!;
    expect(a.input!.format).toBe('onnx');
    expect(a.verdict, onnx.stderr).toBe('backdoor');
    expect(onnx.code).toBe(1);
    expect(a.detection!.flagged).toEqual([backdoored.attack!.target]);
    expect(a.repair!.status).toBe('repaired');
    // Same number of player layers, each of the same kind (channels or positions), in graph order.
    const kinds = (names: string[]) => names.map((n) => (n.endsWith(':positions') ? 'positions' : 'channels'));
    expect(kinds(a.model!.playerLayers)).toEqual(kinds(twinPlayerLayers));
    expect(a.model!.playerLayers.length).toBeGreaterThan(0);
    expect(a.repair!.pruned.length).toBeGreaterThan(0);
    for (const p of a.repair!.pruned) expect(place(a, p)).toMatch(/^\d+:/);
  });

  it('writes the repaired .onnx, which onnxruntime runs without the backdoor and onnx.checker accepts', async () => {
    const written = join(onnx.repairedDir!, backdoored.path);
    const repaired = new Uint8Array(readFileSync(written));
    const original = new Uint8Array(readFileSync(join(ONNX, backdoored.path)));
    const test = loadMnist('test', 3000);
    const before = await judgeOnnx(original, test, backdoored.attack);
    const after = await judgeOnnx(repaired, test, backdoored.attack);
    expect(before.asr!).toBeGreaterThan(0.9);
    expect(after.asr!).toBeLessThanOrEqual(0.02);
    expect(before.accuracy - after.accuracy).toBeLessThanOrEqual(0.005);
    const check = onnxCheck(join(ONNX, backdoored.path), written);
    expect(check.checker).toBeNull();
    expect(check.structure).toEqual([]);
    // Only the pruned players' initializers changed; the file keeps its size (values overwritten in place).
    expect(Object.keys(check.changed).length).toBeGreaterThan(0);
    expect(Object.keys(check.changed).every((n) => /^(conv2|fc1)\./.test(n))).toBe(true);
    expect(repaired.length).toBe(original.length);
  });
});

describe('a clean ONNX model (opset 17, no constant folding: the shape arithmetic left in the graph)', () => {
  it('scans clean, exit 0, and nothing is written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shapguard-onnx-clean-'));
    // Under a name that is not .onnx's own case, as registries sometimes store it.
    const path = join(dir, 'Model.ONNX');
    writeFileSync(path, readFileSync(join(ONNX, clean.path)));
    const run = await runCli(['scan', path, '--out', '$OUT', '--seed', '1']);
    expect(run.report!.input!.format).toBe('onnx');
    expect(run.report!.verdict, run.stderr).toBe('clean');
    expect(run.code).toBe(0);
    expect(run.repairedDir).toBeNull();
  });
});
