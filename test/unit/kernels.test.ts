import { describe, expect, it, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { Rng } from '../../src/core/util/rng.ts';

// Gradients computed on the cpu backend (tfjs' reference kernels) and on wasm with our kernels.
async function gradsOn(backend: string, f: () => tf.Scalar, xs: tf.Variable[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const { grads, value } = tf.variableGrads(f, xs);
  value.dispose();
  const out = await Promise.all(xs.map(async (x) => (await grads[x.name]!.data()) as Float32Array));
  for (const g of Object.values(grads)) g.dispose();
  return out;
}

function maxRelErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 1e-6;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

function randomArray(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

describe('wasm gradient kernels match the cpu backend', () => {
  beforeAll(async () => {
    await initWasmBackend();
  });

  const convCases = [
    { stride: 1, pad: 'same', k: 3 },
    { stride: 2, pad: 'same', k: 3 },
    { stride: 1, pad: 'valid', k: 5 },
    { stride: 2, pad: 'valid', k: 3 },
  ] as const;
  for (const c of convCases) {
    it(`Conv2DBackpropFilter stride ${c.stride} ${c.pad} ${c.k}x${c.k}`, async () => {
      const rng = new Rng(7);
      const x = tf.variable(tf.tensor4d(randomArray(rng, 3 * 11 * 11 * 4), [3, 11, 11, 4]), true);
      const w = tf.variable(tf.tensor4d(randomArray(rng, c.k * c.k * 4 * 6), [c.k, c.k, 4, 6]), true);
      const f = () => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad))) as tf.Scalar;
      const wasm = await gradsOn('wasm', f, [x, w]);
      const cpu = await gradsOn('cpu', f, [x, w]);
      await tf.setBackend('wasm');
      expect(maxRelErr(wasm[1]!, cpu[1]!)).toBeLessThan(1e-4);
      expect(maxRelErr(wasm[0]!, cpu[0]!)).toBeLessThan(1e-4);
      x.dispose();
      w.dispose();
    });
  }

  for (const stride of [1, 2]) {
    it(`DepthwiseConv2dNativeBackpropInput stride ${stride}`, async () => {
      const rng = new Rng(11);
      const x = tf.variable(tf.tensor4d(randomArray(rng, 2 * 9 * 9 * 3), [2, 9, 9, 3]), true);
      const w = tf.tensor4d(randomArray(rng, 3 * 3 * 3 * 2), [3, 3, 3, 2]);
      const f = () => tf.sum(tf.square(tf.depthwiseConv2d(x as tf.Tensor4D, w, stride, 'same'))) as tf.Scalar;
      const wasm = await gradsOn('wasm', f, [x]);
      const cpu = await gradsOn('cpu', f, [x]);
      await tf.setBackend('wasm');
      expect(maxRelErr(wasm[0]!, cpu[0]!)).toBeLessThan(1e-4);
      x.dispose();
      w.dispose();
    });
  }

  for (const c of [
    { stride: 1, pad: 'same', k: 3 },
    { stride: 1, pad: 'valid', k: 5 },
    { stride: 2, pad: 'same', k: 3 },
  ] as const) {
    it(`Conv2DBackpropInput (faster stride-1 path) ${c.stride} ${c.pad} ${c.k}x${c.k}`, async () => {
      const rng = new Rng(13);
      const x = tf.variable(tf.tensor4d(randomArray(rng, 2 * 10 * 10 * 3), [2, 10, 10, 3]), true);
      const w = tf.tensor4d(randomArray(rng, c.k * c.k * 3 * 5), [c.k, c.k, 3, 5]);
      const b = tf.tensor1d(randomArray(rng, 5));
      // Through the fused conv (bias + relu), as tfjs-layers runs it.
      const f = () =>
        tf.sum(
          tf.square(tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w, strides: c.stride, pad: c.pad, bias: b, activation: 'relu' })),
        ) as tf.Scalar;
      const wasm = await gradsOn('wasm', f, [x]);
      const cpu = await gradsOn('cpu', f, [x]);
      await tf.setBackend('wasm');
      expect(maxRelErr(wasm[0]!, cpu[0]!)).toBeLessThan(1e-4);
      tf.dispose([x, w, b]);
    });
  }

  for (const c of [
    { size: 2, shape: [2, 8, 8, 3], ties: false },
    { size: 2, shape: [2, 9, 7, 3], ties: false },
    { size: 3, shape: [1, 9, 9, 2], ties: false },
    { size: 2, shape: [2, 8, 8, 3], ties: true },
    { size: 3, shape: [1, 10, 9, 2], ties: true },
  ] as const) {
    const what = c.ties ? 'with tied maxima (flat regions) ' : '';
    it(`MaxPool gradient (faster non-overlapping path) ${what}${c.size}x${c.size} on ${c.shape.join('x')}`, async () => {
      const rng = new Rng(17);
      const n = c.shape.reduce<number>((a, b) => a * b, 1);
      // Ties: values from {0, 1} and a flat top half, as a conv's output is over a plain background; dy
      // must go to one maximum per window (the first, as tfjs' cpu kernel, TensorFlow and PyTorch send it).
      const values = c.ties ? Float32Array.from(randomArray(rng, n), (v, i) => (i < n / 2 ? 0.5 : v > 0.5 ? 1 : 0)) : randomArray(rng, n);
      const x = tf.variable(tf.tensor4d(values, [...c.shape]), true);
      // Weight each pooled output differently so a misrouted gradient shows.
      const f = () => {
        const y = tf.maxPool(x as tf.Tensor4D, c.size, c.size, 'valid');
        return tf.sum(tf.mul(y, tf.reshape(tf.range(1, 1 + y.size), y.shape))) as tf.Scalar;
      };
      const wasm = await gradsOn('wasm', f, [x]);
      // The registered gradient is global (ours on every backend, reading values in place on wasm and
      // through dataSync elsewhere), so the reference is tfjs' own cpu MaxPoolGrad kernel, run directly on
      // the same dy.
      const cpuOurs = await gradsOn('cpu', f, [x]);
      const attrs = { filterSize: c.size, strides: c.size, pad: 'valid' };
      const reference = tf.tidy(() => {
        const input = tf.tensor4d(values, [...c.shape]);
        const output = tf.maxPool(input, c.size, c.size, 'valid');
        const dy = tf.reshape(tf.range(1, 1 + output.size), output.shape);
        return tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, attrs) as tf.Tensor;
      });
      const cpu = (await reference.data()) as Float32Array;
      reference.dispose();
      await tf.setBackend('wasm');
      expect(maxRelErr(wasm[0]!, cpu)).toBeLessThan(1e-6);
      expect(maxRelErr(cpuOurs[0]!, cpu)).toBeLessThan(1e-6);
      x.dispose();
    });
  }

  it('runs on wasm with SIMD, not on a silent cpu fallback', async () => {
    await initWasmBackend();
    expect(tf.getBackend()).toBe('wasm');
    expect(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')).toBe(true);
  });
});
