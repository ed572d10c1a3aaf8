import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-web';
import { argmaxOf } from '../../src/core/stages/repair/prune.ts';
import { stampedNonTarget } from '../data/evaluate.ts';
import type { ImageSet } from '../data/mnist.ts';
import type { Trigger } from '../data/triggers.ts';

/** onnxruntime on wasm, single-threaded: the test oracle for ONNX models (never used by the scan). */
ort.env.wasm.numThreads = 1;
// Its .wasm and loader from the package itself, also when a bench bundles this file elsewhere (tools/run-ts.mjs).
ort.env.wasm.wasmPaths = `${pathToFileURL(dirname(createRequire(import.meta.url).resolve('onnxruntime-web'))).href}/`;

/** NHWC rows (the engine's layout) as NCHW (ONNX's). */
export function toNchw(images: Float32Array, shape: [number, number, number]): Float32Array {
  const [h, w, c] = shape;
  const px = h * w * c;
  const out = new Float32Array(images.length);
  for (let b = 0; b < images.length / px; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[b * px + (k * h + y) * w + x] = images[b * px + (y * w + x) * c + k]!;
  return out;
}

/** The model's outputs on NHWC images, computed by onnxruntime, in batches. */
export async function runOnnx(
  bytes: Uint8Array,
  images: Float32Array,
  shape: [number, number, number],
  batch = 500,
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const px = shape[0] * shape[1] * shape[2];
  const n = images.length / px;
  const parts: Float32Array[] = [];
  try {
    for (let s = 0; s < n; s += batch) {
      const m = Math.min(batch, n - s);
      const x = new ort.Tensor('float32', toNchw(images.subarray(s * px, (s + m) * px), shape), [m, shape[2], shape[0], shape[1]]);
      const out = await session.run({ [session.inputNames[0]!]: x });
      parts.push(Float32Array.from(out[session.outputNames[0]!]!.data as Float32Array));
    }
  } finally {
    await session.release();
  }
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Predicted classes from a [N, classes] output. */
export function argmaxRows(out: Float32Array, classes: number): Int32Array {
  return Int32Array.from({ length: out.length / classes }, (_, i) => argmaxOf(out, i * classes, classes));
}

/**
 * Real accuracy and, for a backdoored model, the planted trigger's success on the set's other classes, with
 * the model run by onnxruntime (how the tests and the bench judge a written .onnx, not by our loader).
 */
export async function judgeOnnx(
  bytes: Uint8Array,
  set: ImageSet,
  attack: { trigger: Trigger; target: number } | null,
): Promise<{ accuracy: number; asr: number | null }> {
  const pred = argmaxRows(await runOnnx(bytes, set.images, set.shape), set.classes);
  const accuracy = pred.reduce((s, p, i) => s + (p === set.labels[i] ? 1 : 0), 0) / set.count;
  if (attack === null) return { accuracy, asr: null };
  const hits = argmaxRows(await runOnnx(bytes, stampedNonTarget(set, attack.trigger, attack.target), set.shape), set.classes);
  return { accuracy, asr: hits.filter((p) => p === attack.target).length / hits.length };
}

export interface OnnxCheck {
  /** onnx.checker's complaint, or null when it accepts the file. */
  checker: string | null;
  /** What differs from the original other than initializer values. */
  structure: string[];
  /** Initializers whose values differ, with how many elements. */
  changed: Record<string, number>;
}

/** Checks a written .onnx with Debian's python3-onnx (test/helpers/onnx_check.py), an ONNX reader independent of ours. */
export function onnxCheck(original: string, written: string): OnnxCheck {
  return JSON.parse(
    execFileSync('/usr/bin/python3', [resolve('test/helpers/onnx_check.py'), original, written], { encoding: 'utf8' }),
  ) as OnnxCheck;
}
