import { Conv2D, getKernel, type backend_util, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's BackendWasm the added kernels use. */
export interface WasmBackendLike {
  disposeData(dataId: object): void;
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: 'float32', memoryOffset?: number, values?: Float32Array): TensorInfo;
}

/** Attributes shared by the convolution gradient kernels. */
export interface ConvGradAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Runs another registered wasm kernel by name; intermediates are the caller's to dispose. */
export function callKernel(name: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap, backend: WasmBackendLike): TensorInfo {
  const kernel = getKernel(name, 'wasm');
  if (kernel === undefined) throw new Error(`wasm kernel ${name} is not registered`);
  const out = kernel.kernelFunc({ inputs, attrs, backend: backend as never });
  if (Array.isArray(out)) throw new Error(`wasm kernel ${name} returned several outputs`);
  return out as TensorInfo;
}

/** A stride-1 NHWC convolution with explicit [top, bottom] / [left, right] padding and the given dilation. */
export function conv2dExplicit(
  x: TensorInfo,
  filter: TensorInfo,
  pads: { top: number; bottom: number; left: number; right: number },
  dilations: [number, number],
  backend: WasmBackendLike,
): TensorInfo {
  const attrs = {
    strides: [1, 1],
    pad: [
      [0, 0],
      [pads.top, pads.bottom],
      [pads.left, pads.right],
      [0, 0],
    ],
    dataFormat: 'NHWC',
    dilations,
    dimRoundingMode: null,
  };
  return callKernel(Conv2D, { x, filter }, attrs as unknown as NamedAttrMap, backend);
}
