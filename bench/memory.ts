// Memory probe, one model per process (the wasm heap only grows, so each needs a fresh one): a CIFAR-style
// CNN of millions of parameters, untrained, scanned at the default memory budget for a short wall budget.
// Prints one Markdown row: parameters, the activation budget, peak live tensors, wasm heap, JS heap, and
// their sum with the model's file bytes in MB (what a Worker isolate holds).
// Usage: memory.ts <dense units> [bn]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { scanModel } from '../src/core/scan/scan.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { saveLayersModel } from '../tools/fixtures/save.ts';
import { readDir } from '../test/helpers/tiny-model.ts';

const dense = Number(process.argv[2] ?? 320);
const bn = process.argv[3] === 'bn';
await initWasmBackend({ wasmPath: nodeWasmPath() });
const L = tfl.layers;
const block = (filters: number, first = false) => [
  L.conv2d({
    ...(first ? { inputShape: [32, 32, 3] } : {}),
    filters,
    kernelSize: 3,
    padding: 'same',
    activation: bn ? 'linear' : 'relu',
    kernelInitializer: tfl.initializers.glorotUniform({ seed: filters }),
  }),
  ...(bn ? [L.batchNormalization(), L.activation({ activation: 'relu' })] : []),
];
const model = tfl.sequential({
  layers: [
    ...block(64, true),
    ...block(64),
    L.maxPooling2d({ poolSize: 2 }),
    ...block(128),
    ...block(128),
    L.maxPooling2d({ poolSize: 2 }),
    L.flatten(),
    L.dense({ units: dense, activation: 'relu' }),
    L.dense({ units: 10, activation: 'softmax' }),
  ],
});
const dir = mkdtempSync(join(tmpdir(), 'shapguard-memory-'));
await saveLayersModel(model, dir);
const params = model.countParams();
model.dispose();
const files = readDir(dir);
rmSync(dir, { recursive: true });

const MiB = 2 ** 20;
const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
// Live tensor bytes after every kernel: the progress callback alone would miss the peaks inside a stage.
const engine = tf.engine() as unknown as { state: { numBytes: number }; runKernel: (...a: unknown[]) => unknown };
const run = engine.runKernel.bind(engine);
let peakTensors = 0;
engine.runKernel = (...a: unknown[]) => {
  const out = run(...a);
  peakTensors = Math.max(peakTensors, engine.state.numBytes);
  return out;
};
let peakJs = 0;
const { report } = await scanModel(files, {
  seed: 1,
  toolVersion: 'bench',
  budgetSeconds: 20,
  onProgress: () => (peakJs = Math.max(peakJs, process.memoryUsage().heapUsed)),
});
const mib = (x: number) => (x / MiB).toFixed(0);
// What a Worker isolate would hold: the wasm heap, the JS heap and the model's file bytes.
const isolate = heap() + peakJs + [...files.values()].reduce((a, f) => a + f.byteLength, 0);
console.log(
  `| ${(params / 1e6).toFixed(1)}M${bn ? ', BatchNorm' : ''} | ${mib(params * 4)} | ${mib(report.config.memoryBudgetBytes)} | ${mib(peakTensors)} | ${mib(heap())} | ${mib(peakJs)} | ${(isolate / 1e6).toFixed(0)} | ${report.verdict} |`,
);
