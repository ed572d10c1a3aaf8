import {
  Conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropInput,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { callKernel, type WasmBackendLike } from './wasm-kernel.ts';

/**
 * The input gradient of a depthwise convolution, missing on wasm, so input-space optimisation (data and
 * trigger reverse) fails on models with DepthwiseConv2D / SeparableConv2D. A depthwise conv equals a full
 * conv whose filter is block-diagonal over channels, and wasm has Conv2DBackpropInput for that.
 */
const depthwiseBackpropInput: KernelFunc = ({ inputs, attrs, backend }) => {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as {
    strides: [number, number] | number;
    dilations: [number, number] | number;
    pad: unknown;
    dimRoundingMode?: string;
    inputShape: [number, number, number, number];
  };
  const d = typeof dilations === 'number' ? [dilations, dilations] : dilations;
  if (d[0] !== 1 || d[1] !== 1) {
    throw new Error('DepthwiseConv2dNativeBackpropInput on wasm supports dilation 1 only');
  }
  const b = backend as unknown as WasmBackendLike;
  const [fh, fw, inC, mult] = filter.shape as [number, number, number, number];
  const outC = inC * mult;
  const src = b.readSync(filter.dataId);
  const full = new Float32Array(fh * fw * inC * outC);
  for (let p = 0; p < fh * fw; p++) {
    for (let c = 0; c < inC; c++) {
      for (let m = 0; m < mult; m++) {
        full[(p * inC + c) * outC + c * mult + m] = src[(p * inC + c) * mult + m] ?? 0;
      }
    }
  }
  const fullFilter = b.makeOutput([fh, fw, inC, outC], 'float32', undefined, full);
  const out = callKernel(
    Conv2DBackpropInput,
    { dy, filter: fullFilter },
    { strides, pad, dataFormat: 'NHWC', dimRoundingMode, inputShape } as unknown as NamedAttrMap,
    b,
  );
  b.disposeData(fullFilter.dataId);
  return out;
};

export const depthwiseBackpropInputConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropInput,
};
