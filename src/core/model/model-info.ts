import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ShapguardError } from '../errors.ts';
import { Graph } from '../tfjs/graph.ts';
import { PLAYER_LAYERS } from './layers.ts';
import type { PlayerLayer } from '../stages/players.ts';

export interface BnStats {
  layer: string;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/** What the scan needs to know about a classifier before touching it. */
export interface ModelInfo {
  graph: Graph;
  shape: [number, number, number];
  classes: number;
  /** Whether the model's own output is a probability vector (softmax); the graph's output is always logits. */
  outputsProbabilities: boolean;
  bn: BnStats[];
  /** Multiply-accumulates per row for each step, for evaluation accounting. */
  stepMacs: number[];
  totalMacs: number;
}

function activationName(layer: tfl.layers.Layer): string | undefined {
  const cfg = layer.getConfig() as { activation?: unknown };
  return typeof cfg.activation === 'string' ? cfg.activation : undefined;
}

function macs(layer: tfl.layers.Layer): number {
  const out = (layer.outputShape as (number | null)[]).slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
  const cls = layer.getClassName();
  if (cls === 'Conv2D' || cls === 'Dense' || cls === 'DepthwiseConv2D' || cls === 'SeparableConv2D') {
    const params = layer.countParams();
    const channels = (layer.outputShape as number[]).at(-1) ?? 1;
    return Math.max(out, (out / channels) * params);
  }
  return out;
}

/** Inspects a loaded model: image input, class count, probability output, BatchNorm statistics. */
export function describeModel(model: tfl.LayersModel): ModelInfo {
  const graph = new Graph(model);
  const inShape = model.inputs[0]!.shape;
  if (inShape.length !== 4 || inShape.slice(1).some((d) => d === null || d <= 0)) {
    throw new ShapguardError(
      'unsupported',
      `the input shape ${JSON.stringify(inShape)} is not an image batch [n, height, width, channels]`,
    );
  }
  const shape = inShape.slice(1) as [number, number, number];
  if (shape[2] !== 1 && shape[2] !== 3)
    throw new ShapguardError('unsupported', `the input has ${shape[2]} channels; grey (1) or RGB (3) images are supported`);
  const outShape = model.outputs[0]!.shape;
  const classes = outShape[1];
  if (outShape.length !== 2 || classes === null || classes === undefined || classes < 2) {
    throw new ShapguardError('unsupported', `the output shape ${JSON.stringify(outShape)} is not a class vector`);
  }
  const last = graph.steps.at(-1)!.layer;
  const act = activationName(last);
  if (act === 'sigmoid')
    throw new ShapguardError('unsupported', 'multi-label (sigmoid) outputs are not supported; the scan needs a softmax classifier');
  const outputsProbabilities = graph.droppedSoftmax;
  const bn: BnStats[] = [];
  for (const step of graph.steps) {
    if (step.layer.getClassName() !== 'BatchNormalization') continue;
    const cfg = step.layer.getConfig() as { axis?: number | number[] };
    const axis = Array.isArray(cfg.axis) ? cfg.axis[0] : cfg.axis;
    if (axis !== -1 && axis !== 3) continue;
    const w = step.layer.weights;
    const mean = w.find((v) => v.originalName.endsWith('moving_mean'));
    const variance = w.find((v) => v.originalName.endsWith('moving_variance'));
    if (mean && variance) bn.push({ layer: step.layer.name, mean: mean.read() as tf.Tensor1D, variance: variance.read() as tf.Tensor1D });
  }
  const stepMacs = graph.steps.map((s) => macs(s.layer));
  return { graph, shape, classes, outputsProbabilities, bn, stepMacs, totalMacs: stepMacs.reduce((a, b) => a + b, 0) };
}

/**
 * The logits the scan reasons with: each row centred and divided by its root mean square over the classes,
 * times `LOGIT_TEMPERATURE`. A model's logits can be rescaled at will (×100, ×0.01) without changing a single
 * prediction; softmax probabilities, the synthesis's confidence target, the trigger's cross-entropy and the
 * Shapley game's values would all change with them. Normalised, they do not, so a rescaled model scans as
 * its original does. The temperature keeps a clearly predicted row confident (one class far above the rest:
 * p ≈ 0.9996 for 10 classes) and two close classes uncertain.
 */
export const LOGIT_TEMPERATURE = 3;

function normalised(y: tf.Tensor): tf.Tensor2D {
  const centred = tf.sub(y, tf.mean(y, 1, true));
  const rms = tf.sqrt(tf.add(tf.mean(tf.square(centred), 1, true), 1e-12));
  return tf.mul(tf.div(centred, rms), LOGIT_TEMPERATURE) as tf.Tensor2D;
}

/** Log-probabilities of the graph's output (logits), normalised against their scale. */
export function logProbs(y: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => tf.logSoftmax(normalised(y)) as tf.Tensor2D);
}

/** Probabilities of the graph's output (logits), normalised against their scale. */
export function probs(y: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => tf.softmax(normalised(y)) as tf.Tensor2D);
}

/**
 * Player layers: by default the last Conv2D's channels and, where a Flatten feeds a Dense layer, that
 * layer's input positions; or the named Conv2D / Dense layers (`name:positions` for position players).
 */
export function playerLayers(info: ModelInfo, names?: string[]): PlayerLayer[] {
  if (names && names.length > 0) {
    const out = names.map((n): PlayerLayer => {
      const positions = n.endsWith(':positions');
      const layer = positions ? n.slice(0, -':positions'.length) : n;
      const step = info.graph.steps[info.graph.stepOf(layer)]!;
      if (!PLAYER_LAYERS.has(step.layer.getClassName())) {
        throw new ShapguardError('input', `--layers: "${layer}" is a ${step.layer.getClassName()}; players must be Conv2D or Dense layers`);
      }
      return { layer, kind: positions ? 'positions' : 'channels' };
    });
    return out.sort((a, b) => info.graph.stepOf(a.layer) - info.graph.stepOf(b.layer));
  }
  const convs = info.graph.steps.filter((s) => s.layer.getClassName() === 'Conv2D');
  if (convs.length === 0)
    throw new ShapguardError('unsupported', 'the model has no Conv2D layer to take players from; name Dense layers with --layers');
  const out: PlayerLayer[] = [{ layer: convs.at(-1)!.layer.name, kind: 'channels' }];
  const flat = info.graph.steps.findIndex((_, i) => info.graph.flattenGrid(i) !== null);
  if (flat >= 0 && flat > info.graph.stepOf(out[0]!.layer)) out.push({ layer: info.graph.steps[flat]!.layer.name, kind: 'positions' });
  return out;
}
