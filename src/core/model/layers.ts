import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * Layer classes the scan knows how to run and reason about. Anything else is refused by name before
 * tfjs deserialises it, so a model can never make the scanner execute code of its choosing.
 */
export const SUPPORTED_LAYERS = new Set([
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'SeparableConv2D',
  'Dense',
  'BatchNormalization',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'Flatten',
  'Reshape',
  'Dropout',
  'SpatialDropout2D',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'Softmax',
  'ZeroPadding2D',
  'Add',
  'Concatenate',
  'Multiply',
  'Average',
  'Maximum',
  'Rescaling',
]);

/** Layers whose output channels can be players (and be pruned by zeroing a kernel slice and bias). */
export const PLAYER_LAYERS = new Set(['Conv2D', 'Dense']);

/** One of a layer's weights as tfjs-layers holds it. */
export type LayerWeight = tfl.layers.Layer['weights'][number];

/** A layer's weight by its short name ("kernel", "bias", "moving_mean", …), the last part of its path. */
export function layerWeight(layer: tfl.layers.Layer, short: string): LayerWeight | undefined {
  return layer.weights.find((w) => w.originalName.split('/').at(-1) === short);
}
