import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { layerWeight } from '../model/layers.ts';

/**
 * Forward computations of Conv2D, Dense and inference-mode BatchNormalization built from plain tfjs ops, for
 * the scan's gradient passes. tfjs-layers runs Conv2D as a fused op whose gradient always computes the
 * filter's gradient too (a third of a trigger-reverse step on wasm, though only the input's is needed),
 * and tfjs-core's BatchNorm gradient tiles 1/σ to the whole input's shape, which wasm's Tile does in a
 * plain loop (half of a step on a BN model). The ops here compute the same values, and their gradients
 * cover only what the tape asks for. Anything they do not cover returns null and runs through the layer.
 */

interface ConvConfig {
  strides: number[] | number;
  padding: 'valid' | 'same' | 'causal';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: number[] | number;
  useBias: boolean;
}

interface BnConfig {
  axis: number | number[];
  epsilon: number;
  center: boolean;
  scale: boolean;
}

function pair(v: number[] | number): [number, number] {
  return Array.isArray(v) ? [v[0]!, v[1] ?? v[0]!] : [v, v];
}

function weight(layer: tfl.layers.Layer, short: string): tf.Tensor | null {
  return layerWeight(layer, short)?.read() ?? null;
}

/** Conv2D's pre-activation output (convolution plus bias), or null where the layer is not plain NHWC. */
export function conv2dPre(layer: tfl.layers.Layer, x: tf.Tensor): tf.Tensor | null {
  if (layer.getClassName() !== 'Conv2D' || x.rank !== 4) return null;
  const cfg = layer.getConfig() as unknown as ConvConfig;
  if (cfg.dataFormat !== 'channelsLast' || (cfg.padding !== 'valid' && cfg.padding !== 'same')) return null;
  const kernel = weight(layer, 'kernel');
  if (kernel === null || kernel.rank !== 4) return null;
  const out = tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, pair(cfg.strides), cfg.padding, 'NHWC', pair(cfg.dilationRate));
  const bias = cfg.useBias ? weight(layer, 'bias') : null;
  return bias ? tf.add(out, bias) : out;
}

/**
 * Dense's pre-activation output (x·W plus bias) for a 2-D input, or null otherwise. Its gradient is the
 * input's alone, computed as (W·dyᵀ)ᵀ: tfjs' own dy·Wᵀ makes XNNPACK pack a transposed copy of W and
 * keep it as long as W lives (20 MB more wasm heap for a 5M-parameter Dense layer); this way only the
 * small dy is packed.
 */
export function densePre(layer: tfl.layers.Layer, x: tf.Tensor): tf.Tensor | null {
  if (layer.getClassName() !== 'Dense' || x.rank !== 2) return null;
  const kernel = weight(layer, 'kernel');
  if (kernel === null || kernel.rank !== 2) return null;
  const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.matMul(args[0] as tf.Tensor2D, kernel as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.transpose(tf.matMul(kernel as tf.Tensor2D, dy as tf.Tensor2D, false, true)),
  }));
  const out = product(x);
  const bias = (layer.getConfig() as { useBias?: boolean }).useBias === false ? null : weight(layer, 'bias');
  return bias ? tf.add(out, bias) : out;
}

/** Inference-mode BatchNormalization over the last axis as x·a + b, or null for any other form. */
export function batchNormInference(layer: tfl.layers.Layer, x: tf.Tensor): tf.Tensor | null {
  if (layer.getClassName() !== 'BatchNormalization') return null;
  const cfg = layer.getConfig() as unknown as BnConfig;
  const axis = Array.isArray(cfg.axis) ? (cfg.axis.length === 1 ? cfg.axis[0]! : NaN) : cfg.axis;
  if (axis !== -1 && axis !== x.rank - 1) return null;
  const mean = weight(layer, 'moving_mean');
  const variance = weight(layer, 'moving_variance');
  if (mean === null || variance === null) return null;
  const gamma = cfg.scale ? weight(layer, 'gamma') : null;
  const beta = cfg.center ? weight(layer, 'beta') : null;
  if ((cfg.scale && gamma === null) || (cfg.center && beta === null)) return null;
  const a = tf.tidy(() => {
    const inv = tf.rsqrt(tf.add(variance, cfg.epsilon));
    return gamma ? tf.mul(inv, gamma) : inv;
  });
  const b = tf.tidy(() => {
    const shifted = tf.neg(tf.mul(mean, a));
    return beta ? tf.add(shifted, beta) : shifted;
  });
  return tf.add(tf.mul(x, a), b);
}
