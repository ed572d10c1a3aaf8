import { createExecutionContext, env } from 'cloudflare:test';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import worker from '../../src/cloudflare/index.ts';
import { loadModel } from '../../src/core/model/load.ts';

// The ONNX reader inside workerd: the protobuf library, the schema and the converter run there as in Node
// (no eval, no file system), and the model computes what onnxruntime computed for it in Node.
describe('ONNX in workerd', () => {
  it('loads a PyTorch export with every mapped op and matches onnxruntime to 1e-4', async () => {
    const health = await worker.fetch(new Request('https://shapguard.test/health/wasm') as never, env, createExecutionContext());
    expect(await health.json()).toEqual({ ok: true, backend: 'wasm' });
    const bytes = Uint8Array.from(atob(env.FIXTURE_ONNX_B64), (c) => c.charCodeAt(0));
    const loaded = await loadModel(new Map([['ops.onnx', bytes]]), 'ops.onnx');
    expect(loaded.format).toBe('onnx');
    const images = Float32Array.from({ length: 4 * 16 * 16 * 3 }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37 + 2));
    const out = tf.tidy(() => (loaded.model.predict(tf.tensor4d(images, [4, 16, 16, 3])) as tf.Tensor).dataSync().slice());
    const expected = JSON.parse(env.FIXTURE_ONNX_EXPECTED) as number[];
    expect(out.length).toBe(expected.length);
    expect(Math.max(...expected.map((v, i) => Math.abs(v - out[i]!)))).toBeLessThan(1e-4);
  });
});
