import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { conv2dBackpropFilterConfig } from './kernels/conv2d-backprop-filter.ts';
import { depthwiseBackpropInputConfig } from './kernels/depthwise-backprop-input.ts';
import { fastConv2dBackpropInputConfig } from './kernels/conv2d-backprop-input.ts';
import { fastMaxPoolGradConfig } from './kernels/maxpool-grad.ts';
import { ShapguardError } from '../errors.ts';

export interface WasmInitOptions {
  /**
   * A precompiled tfjs-backend-wasm-simd module. Workers forbid compiling wasm from bytes, so there the
   * module must come from an import; in Node leave it out and tfjs reads its own file.
   */
  simdModule?: WebAssembly.Module;
  /** Folder (URL or path, ending in '/') holding tfjs' .wasm files, for runtimes that read them. */
  wasmPath?: string;
}

let ready: Promise<void> | undefined;

/**
 * Puts tfjs on the WASM SIMD backend, once per isolate. Fails loudly instead of letting tfjs fall back to
 * the ~30× slower cpu backend, which would silently blow every time budget.
 */
export function initWasmBackend(options: WasmInitOptions = {}): Promise<void> {
  ready ??= init(options).catch((err: unknown) => {
    ready = undefined;
    throw err;
  });
  return ready;
}

async function init(options: WasmInitOptions): Promise<void> {
  registerMissingKernels();
  if (options.wasmPath !== undefined && options.simdModule === undefined) setWasmPaths(options.wasmPath);
  const ok = options.simdModule === undefined ? await tf.setBackend('wasm') : await withModule(options.simdModule);
  if (!ok || tf.getBackend() !== 'wasm') {
    throw new ShapguardError('backend', 'tfjs WASM backend could not be initialised (no fallback to cpu by design)');
  }
  // tfjs picks the non-SIMD binary where SIMD is missing; the budget model assumes SIMD, so say so.
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  if (simd !== true) throw new ShapguardError('backend', 'WebAssembly SIMD is not available in this runtime');
}

let kernelsRegistered = false;
function registerMissingKernels(): void {
  if (kernelsRegistered) return;
  for (const config of [conv2dBackpropFilterConfig, depthwiseBackpropInputConfig]) {
    if (tf.getKernel(config.kernelName, 'wasm') === undefined) tf.registerKernel(config);
  }
  // Faster replacements for two slow wasm gradients (same results; tested against the cpu backend).
  const conv = fastConv2dBackpropInputConfig();
  if (conv) {
    tf.unregisterKernel(conv.kernelName, 'wasm');
    tf.registerKernel(conv);
  }
  const pool = fastMaxPoolGradConfig();
  if (pool) tf.registerGradient(pool);
  kernelsRegistered = true;
}

/**
 * tfjs has no hook for a precompiled module (tfjs#8157): route emscripten through the platform fetch,
 * answer that fetch with nothing, and hand the imported Module to WebAssembly.instantiate meanwhile.
 */
async function withModule(module: WebAssembly.Module): Promise<boolean> {
  const g = globalThis as { process?: unknown; fetch: typeof fetch };
  const realInstantiate = WebAssembly.instantiate.bind(WebAssembly);
  const realFetch = g.fetch;
  const realProcess = g.process;
  const marker = 'shapguard-wasm/';
  setWasmPaths(marker, true);
  g.fetch = ((input: RequestInfo | URL, init?: RequestInit) =>
    String(input instanceof Request ? input.url : input).startsWith(marker)
      ? Promise.resolve(new Response(new Uint8Array(0)))
      : realFetch(input, init)) as typeof fetch;
  // tfjs calls instantiate(bytes) and wants {instance, module}; instantiate(Module) gives the instance alone.
  (WebAssembly as { instantiate: unknown }).instantiate = async (source: unknown, imports?: WebAssembly.Imports) => {
    const compiled = source instanceof WebAssembly.Module ? source : module;
    const instance = await realInstantiate(compiled, imports);
    return source instanceof WebAssembly.Module ? instance : { instance, module: compiled };
  };
  // A nodejs_compat `process` polyfill makes emscripten take its Node path (__dirname): hide it meanwhile.
  g.process = undefined;
  try {
    return await tf.setBackend('wasm');
  } finally {
    g.process = realProcess;
    g.fetch = realFetch;
    (WebAssembly as { instantiate: unknown }).instantiate = realInstantiate;
  }
}
