import { backend_util, Conv2DBackpropInput, getKernel, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { conv2dExplicit, type ConvGradAttrs, type WasmBackendLike } from './wasm-kernel.ts';

/**
 * A faster input gradient for stride-1 convolutions on wasm. tfjs-backend-wasm's Conv2DBackpropInput is a
 * plain loop, about 5× slower than its XNNPACK forward conv, and input gradients are what data and
 * trigger reverse spend their time on. With stride 1 the input gradient is a forward convolution of dy
 * with the filter rotated by 180° and its channel axes swapped; other strides use the original kernel.
 */
export function fastConv2dBackpropInputConfig(): KernelConfig | undefined {
  const original = getKernel(Conv2DBackpropInput, 'wasm');
  if (original === undefined) return undefined;
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, attrs, backend } = args;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as ConvGradAttrs & {
      inputShape: [number, number, number, number];
    };
    const s = typeof strides === 'number' ? [strides, strides] : strides;
    if (s[0] !== 1 || s[1] !== 1 || dataFormat === 'NCHW') return original.kernelFunc(args);
    const b = backend as unknown as WasmBackendLike;
    const [kh, kw, inC, outC] = filter.shape as [number, number, number, number];
    const info = backend_util.computeConv2DInfo(inputShape, [kh, kw, inC, outC], 1, 1, pad, dimRoundingMode);
    const { top, bottom, left, right } = info.padInfo;
    if (top > kh - 1 || bottom > kh - 1 || left > kw - 1 || right > kw - 1) return original.kernelFunc(args);
    const src = b.readSync(filter.dataId);
    const rotated = new Float32Array(kh * kw * inC * outC);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        for (let c = 0; c < inC; c++) {
          for (let o = 0; o < outC; o++) {
            rotated[((i * kw + j) * outC + o) * inC + c] = src[(((kh - 1 - i) * kw + (kw - 1 - j)) * inC + c) * outC + o] ?? 0;
          }
        }
      }
    }
    const w = b.makeOutput([kh, kw, outC, inC], 'float32', undefined, rotated);
    const pads = { top: kh - 1 - top, bottom: kh - 1 - bottom, left: kw - 1 - left, right: kw - 1 - right };
    const out = conv2dExplicit(dy, w, pads, [1, 1], b);
    b.disposeData(w.dataId);
    return out;
  };
  return {
    kernelName: Conv2DBackpropInput,
    backendName: 'wasm',
    kernelFunc,
    // The original kernel's wasm entry point is bound in its setup; keep that for the fallback path.
    ...(original.setupFunc ? { setupFunc: original.setupFunc } : {}),
  };
}
