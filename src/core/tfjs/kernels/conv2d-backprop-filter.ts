import {
  backend_util,
  Conv2DBackpropFilter,
  Slice,
  Transpose,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { callKernel, conv2dExplicit, type ConvGradAttrs, type WasmBackendLike } from './wasm-kernel.ts';

/**
 * The filter gradient of a 2-D convolution, which tfjs-backend-wasm lacks (so training and even input
 * gradients through tfjs-layers' fused conv fail on wasm). It is a convolution of the input with the
 * output gradient, batch playing the role of channels, with the forward stride as dilation.
 */
const conv2dBackpropFilter: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as ConvGradAttrs & {
    filterShape: [number, number, number, number];
  };
  if (dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
  const b = backend as unknown as WasmBackendLike;
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
  const { top, bottom, left, right } = info.padInfo;
  const xT = callKernel(Transpose, { x }, { perm: [3, 1, 2, 0] }, b);
  const dyT = callKernel(Transpose, { x: dy }, { perm: [1, 2, 0, 3] }, b);
  const conv = conv2dExplicit(xT, dyT, { top, bottom, left, right }, [info.strideHeight, info.strideWidth], b);
  const convT = callKernel(Transpose, { x: conv }, { perm: [1, 2, 0, 3] }, b);
  const [fh, fw, ci, co] = filterShape;
  const out = callKernel(Slice, { x: convT }, { begin: [0, 0, 0, 0], size: [fh, fw, ci, co] }, b);
  for (const t of [xT, dyT, conv, convT]) b.disposeData(t.dataId);
  return out;
};

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter,
};
