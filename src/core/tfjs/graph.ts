import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ShapguardError } from '../errors.ts';
import { batchNormInference, conv2dPre, densePre } from './fast-layers.ts';

type Layer = tfl.layers.Layer;

/** The parts of tfjs-layers' SymbolicTensor the executor walks (not in its public types). */
interface SymbolicNode {
  id: number;
  sourceLayer: Layer;
  inputs: SymbolicNode[];
  outputTensorIndex?: number;
}

interface Step {
  layer: Layer;
  inputs: number[];
  output: number;
  outputIndex: number;
}

/** Layers that pass their input through unchanged at inference. */
const IDENTITY_AT_INFERENCE = new Set([
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianDropout',
  'GaussianNoise',
  'AlphaDropout',
]);

/** An activation stand-in that lets a layer compute its pre-activation output. */
const LINEAR = { getClassName: () => 'linear', apply: (x: tf.Tensor) => x };

interface WithActivation {
  activation: { getClassName(): string; apply(x: tf.Tensor): tf.Tensor } | null;
}

/**
 * Row masks per player layer: multiplied into that layer's pre-activation output, i.e. exactly what
 * zeroing the channel's kernel slice and bias does, so estimation and pruning agree.
 */
export type ChannelMasks = ReadonlyMap<string, tf.Tensor>;

export interface RunOptions {
  masks?: ChannelMasks;
  /** Row masks multiplied into a layer's (single) input: position players of a Dense layer. */
  inputMasks?: ChannelMasks;
  /** Called with the input of every layer whose class is listed in `tapClasses` (BN statistics). */
  tap?: (layer: Layer, input: tf.Tensor) => void;
  tapClasses?: ReadonlySet<string>;
}

/**
 * Runs a tfjs-layers model layer by layer, so the scan can mask channels at a layer's pre-activation
 * output, read BatchNorm inputs, and restart from cached activations (the "cached prefix" of Shapley
 * estimation). Works for Sequential and functional models, branches and merges included. Its output is
 * the model's logits: a final softmax is left out.
 */
export class Graph {
  readonly steps: Step[];
  private readonly inputId: number;
  private readonly outputId: number;
  /** The last step, when it applies the model's final softmax as its activation: run without it. */
  private readonly softmaxStep: Step | null;
  /** Whether the model ends in a softmax (as a layer or an activation), which the graph leaves out. */
  readonly droppedSoftmax: boolean;

  constructor(readonly model: tfl.LayersModel) {
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      throw new ShapguardError(
        'unsupported',
        `the model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; one of each is supported`,
      );
    }
    const input = model.inputs[0] as unknown as SymbolicNode;
    const output = model.outputs[0] as unknown as SymbolicNode;
    this.inputId = input.id;
    let outputId = output.id;
    const steps: Step[] = [];
    const seen = new Set<number>([input.id]);
    const visit = (node: SymbolicNode): void => {
      if (seen.has(node.id)) return;
      seen.add(node.id);
      if (node.inputs.length === 0)
        throw new ShapguardError('unsupported', `layer ${node.sourceLayer.name} has no inputs and is not the model input`);
      for (const n of node.inputs) visit(n);
      steps.push({
        layer: node.sourceLayer,
        inputs: node.inputs.map((n) => n.id),
        output: node.id,
        outputIndex: node.outputTensorIndex ?? 0,
      });
    };
    visit(output);
    // The scan works on logits: a probability output saturates (log p of a clipped softmax has no gradient
    // once p is tiny, which is where a model rescaled by ×100 leaves every wrong class), and logits are what
    // a temperature can normalise.
    const last = steps.at(-1)!;
    const lastClass = last.layer.getClassName();
    const lastActivation = (last.layer.getConfig() as { activation?: unknown }).activation;
    if (
      (lastClass === 'Softmax' || (lastClass === 'Activation' && lastActivation === 'softmax')) &&
      last.inputs.length === 1 &&
      steps.length > 1
    ) {
      steps.pop();
      outputId = last.inputs[0]!;
      this.softmaxStep = null;
      this.droppedSoftmax = true;
    } else {
      this.softmaxStep = lastActivation === 'softmax' ? last : null;
      this.droppedSoftmax = this.softmaxStep !== null;
    }
    this.steps = steps;
    this.outputId = outputId;
  }

  /** Index of the step that runs `layerName`. */
  stepOf(layerName: string): number {
    const i = this.steps.findIndex((s) => s.layer.name === layerName);
    if (i < 0) throw new ShapguardError('input', `no layer named "${layerName}" on the path from input to output`);
    return i;
  }

  /**
   * For a Dense step fed by a Flatten of a [height, width, channels] feature map (through layers that are
   * the identity at inference, such as Dropout), that grid; else null.
   */
  flattenGrid(stepIndex: number): [number, number, number] | null {
    const step = this.steps[stepIndex]!;
    if (step.layer.getClassName() !== 'Dense' || step.inputs.length !== 1) return null;
    let id = step.inputs[0]!;
    for (;;) {
      const from = this.steps.find((s) => s.output === id);
      if (from === undefined || from.inputs.length !== 1) return null;
      const cls = from.layer.getClassName();
      if (cls === 'Flatten') {
        const cfg = from.layer.getConfig() as { dataFormat?: string };
        const src = this.steps.find((st) => st.output === from.inputs[0]);
        const shape = (src ? src.layer.outputShape : this.model.inputs[0]!.shape) as (number | null)[];
        if (cfg.dataFormat === 'channelsFirst' || shape.length !== 4) return null;
        const [, h, w, c] = shape;
        return h && w && c ? [h, w, c] : null;
      }
      if (!IDENTITY_AT_INFERENCE.has(cls)) return null;
      id = from.inputs[0]!;
    }
  }

  /**
   * The id of the one value that steps `stepIndex` onward read from before it, or null when they read more
   * than one (a skip connection around the step): only then is the rest of the graph a function of one
   * tensor, which `tailFrom` can run from a stand-in for it.
   */
  cutBefore(stepIndex: number): number | null {
    const later = new Set(this.steps.slice(stepIndex).map((s) => s.output));
    const before = new Set<number>();
    for (const s of this.steps.slice(stepIndex)) for (const id of s.inputs) if (!later.has(id)) before.add(id);
    return before.size === 1 ? [...before][0]! : null;
  }

  /**
   * The model's own input range. The engine works on images in [0, 1] whatever the model expects, so its
   * step sizes and priors mean the same on a 0–255 model; the graph maps them on the way in.
   */
  inputRange: [number, number] = [0, 1];

  private input(x: tf.Tensor): tf.Tensor {
    const [lo, hi] = this.inputRange;
    return lo === 0 && hi === 1 ? x : tf.add(tf.mul(x, hi - lo), lo);
  }

  /** Full forward pass. */
  run(x: tf.Tensor, opts: RunOptions = {}): tf.Tensor {
    const values = new Map<number, tf.Tensor>([[this.inputId, this.input(x)]]);
    return this.execute(values, 0, opts);
  }

  /**
   * Runs steps before `stepIndex` and returns every value the rest of the graph still needs, keyed by
   * id, with the pre-activation output of step `stepIndex` itself under key -1.
   */
  prefix(x: tf.Tensor, stepIndex: number): Map<number, tf.Tensor> {
    let keep = new Map<number, tf.Tensor>();
    tf.tidy(() => {
      const values = this.runUpTo(x, stepIndex);
      const step = this.steps[stepIndex]!;
      keep = this.keepNeeded(values, stepIndex + 1, step.output);
      keep.set(-1, tf.keep(this.applyLayer(step, values, true)));
    });
    return keep;
  }

  /** Runs the steps before `stepIndex` and returns every value that step and the rest still need, by id. */
  prefixInput(x: tf.Tensor, stepIndex: number): Map<number, tf.Tensor> {
    let keep = new Map<number, tf.Tensor>();
    tf.tidy(() => void (keep = this.keepNeeded(this.runUpTo(x, stepIndex), stepIndex)));
    return keep;
  }

  private runUpTo(x: tf.Tensor, stepIndex: number): Map<number, tf.Tensor> {
    const values = new Map<number, tf.Tensor>([[this.inputId, this.input(x)]]);
    for (let i = 0; i < stepIndex; i++) this.runStep(this.steps[i]!, values, {});
    return values;
  }

  /** The values steps `from` onward read (except `skip`), kept past the enclosing tidy(), which cannot see into a Map. */
  private keepNeeded(values: ReadonlyMap<number, tf.Tensor>, from: number, skip?: number): Map<number, tf.Tensor> {
    const keep = new Map<number, tf.Tensor>();
    for (let i = from; i < this.steps.length; i++) {
      for (const id of this.steps[i]!.inputs) {
        const v = values.get(id);
        if (v !== undefined && id !== skip && !keep.has(id)) keep.set(id, tf.keep(v));
      }
    }
    return keep;
  }

  /** Runs the graph from step `stepIndex` itself on cached values from `prefixInput`. */
  tailFrom(cached: ReadonlyMap<number, tf.Tensor>, stepIndex: number, opts: RunOptions = {}): tf.Tensor {
    return this.execute(new Map(cached), stepIndex, opts);
  }

  /** Runs the graph from step `stepIndex` on cached values from `prefix` (tiled as the caller needs). */
  tail(cached: ReadonlyMap<number, tf.Tensor>, stepIndex: number, opts: RunOptions = {}): tf.Tensor {
    return tf.tidy(() => {
      const values = new Map<number, tf.Tensor>();
      for (const [id, v] of cached) if (id !== -1) values.set(id, v);
      const step = this.steps[stepIndex]!;
      const pre = cached.get(-1);
      if (pre === undefined) throw new ShapguardError('internal', 'tail() needs the pre-activation under key -1');
      values.set(step.output, this.finish(step, pre, opts));
      return this.execute(values, stepIndex + 1, opts);
    });
  }

  private execute(values: Map<number, tf.Tensor>, from: number, opts: RunOptions): tf.Tensor {
    return tf.tidy(() => {
      for (let i = from; i < this.steps.length; i++) this.runStep(this.steps[i]!, values, opts);
      const out = values.get(this.outputId);
      if (out === undefined) throw new ShapguardError('internal', 'the output was never computed');
      return out;
    });
  }

  private runStep(step: Step, values: Map<number, tf.Tensor>, opts: RunOptions): void {
    const cls = step.layer.getClassName();
    if (opts.tap && opts.tapClasses?.has(cls)) opts.tap(step.layer, values.get(step.inputs[0]!)!);
    const inputMask = opts.inputMasks?.get(step.layer.name);
    // The masked input is for this step alone: other steps reading the same value see it unmasked.
    const seen = inputMask === undefined ? values : new Map(values).set(step.inputs[0]!, tf.mul(values.get(step.inputs[0]!)!, inputMask));
    if (opts.masks?.has(step.layer.name) || step === this.softmaxStep) {
      values.set(step.output, this.finish(step, this.applyLayer(step, seen, true), opts));
    } else {
      values.set(step.output, this.applyLayer(step, seen, false));
    }
  }

  private finish(step: Step, pre: tf.Tensor, opts: RunOptions): tf.Tensor {
    const mask = opts.masks?.get(step.layer.name);
    const masked = mask === undefined ? pre : tf.mul(pre, mask);
    if (step === this.softmaxStep) return masked;
    const act = (step.layer as unknown as WithActivation).activation;
    return act ? act.apply(masked) : masked;
  }

  private applyLayer(step: Step, values: Map<number, tf.Tensor>, preActivation: boolean): tf.Tensor {
    const inputs = step.inputs.map((id) => {
      const v = values.get(id);
      if (v === undefined) throw new ShapguardError('internal', `value ${id} for layer ${step.layer.name} is missing`);
      return v;
    });
    const holder = step.layer as unknown as WithActivation;
    if (inputs.length === 1) {
      const fast = conv2dPre(step.layer, inputs[0]!) ?? densePre(step.layer, inputs[0]!) ?? batchNormInference(step.layer, inputs[0]!);
      if (fast !== null) return preActivation || !holder.activation ? fast : holder.activation.apply(fast);
    }
    const saved = holder.activation;
    if (preActivation) holder.activation = LINEAR;
    try {
      const out = step.layer.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: false });
      const t = Array.isArray(out) ? out[step.outputIndex] : out;
      return t as tf.Tensor;
    } finally {
      holder.activation = saved;
    }
  }
}
