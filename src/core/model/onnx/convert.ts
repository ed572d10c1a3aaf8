import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { errorsIn, ShapguardError } from '../../errors.ts';
import {
  BATCH,
  broadcast,
  concat,
  constant,
  gather,
  reshapeDims,
  size,
  slice,
  squeezeDims,
  transpose,
  unsqueezeDims,
  type ConstArray,
} from './constants.ts';
import { Attributes, nodeName, tensorValue, type GraphProto, type NodeProto } from './decode.ts';
import { TensorProto_DataType as DataType } from './onnx_pb.ts';

const onnxErrors = errorsIn('ONNX');
const invalid: (message: string) => never = onnxErrors.invalid;
const unsupported: (message: string) => never = onnxErrors.unsupported;

/**
 * An image-side value: a tfjs symbolic tensor in NHWC (4-D) or [N, F] (2-D). ONNX computes in NCHW; the
 * layout is translated once here, so the engine sees the model as it sees a Keras one.
 */
interface Sym {
  kind: 'sym';
  t: tfl.SymbolicTensor;
  /**
   * 2-D values: for each ONNX feature, the tfjs feature holding it. A Flatten of an NCHW map reads channels
   * first, tfjs's Flatten of NHWC reads them last; the Dense layer that follows takes its rows permuted.
   */
  perm: Int32Array | null;
  /** ONNX's [N, C, 1, 1] after a global pool, held by tfjs as [N, C]. */
  squeezed: boolean;
  /** Known ≥ 0 (after ReLU, Sigmoid…): a max pool may then pad with zeros instead of −∞. */
  nonNegative: boolean;
}

type Value = Sym | { kind: 'const'; c: ConstArray };

/**
 * Where a tfjs weight's values live in the ONNX file: element i of the tfjs array is element map[i] of the
 * initializer, times scale; map[i] = −1 marks a zero the translation added (a dilated kernel's gaps).
 */
export interface WeightBinding {
  /** tfjs variable name, layer/kernel. */
  name: string;
  shape: number[];
  initializer: string;
  map: Int32Array;
  scale: number;
}

export interface Converted {
  model: tfl.LayersModel;
  bindings: WeightBinding[];
  /** The graph's ops, for the report's words about what was read. */
  ops: string[];
}

const range = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
const isIdentity = (perm: Int32Array | null) => perm === null || perm.every((v, i) => v === i);

/** Keeps layer names legal and unique in tfjs (ONNX node names hold "/" and ".", and may repeat or be empty). */
class Names {
  private readonly used = new Set<string>();
  next(node: NodeProto, suffix = ''): string {
    const base =
      (node.name || `${node.opType}_${node.output[0] ?? ''}`).replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || node.opType;
    let name = `${base}${suffix}`.toLowerCase();
    for (let k = 2; this.used.has(name); k++) name = `${base}${suffix}_${k}`.toLowerCase();
    this.used.add(name);
    return name;
  }
}

/** Explicit [begin, end] pads per spatial dim from pads/auto_pad, as ONNX's conv and pool ops define them. */
function explicitPads(
  attrs: Attributes,
  input: [number, number],
  kernel: [number, number],
  stride: [number, number],
  dilation: [number, number],
  what: string,
) {
  const auto = attrs.string('auto_pad', 'NOTSET');
  if (auto === 'NOTSET') {
    const p = attrs.ints('pads', [0, 0, 0, 0])!;
    if (p.length !== 4 || p.some((v) => v < 0)) unsupported(`${what}: pads [${p.join(', ')}] (four non-negative pads expected)`);
    return [
      [p[0]!, p[2]!],
      [p[1]!, p[3]!],
    ] as [number, number][];
  }
  if (auto === 'VALID') {
    return [
      [0, 0],
      [0, 0],
    ] as [number, number][];
  }
  if (auto !== 'SAME_UPPER' && auto !== 'SAME_LOWER') unsupported(`${what}: auto_pad ${auto}`);
  return input.map((n, i) => {
    const total = samePadTotal(n, kernel[i]!, stride[i]!, dilation[i]!);
    const small = Math.floor(total / 2);
    return auto === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
  }) as [number, number][];
}

/** TensorFlow's "same" padding in one dim: the extra pixel goes at the end. */
function samePadTotal(n: number, k: number, s: number, d: number): number {
  return Math.max((Math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0);
}

function isTfSame(
  pads: [number, number][],
  input: [number, number],
  kernel: [number, number],
  stride: [number, number],
  dilation: [number, number],
) {
  return pads.every(([b, e], i) => {
    const total = samePadTotal(input[i]!, kernel[i]!, stride[i]!, dilation[i]!);
    return b === Math.floor(total / 2) && e === total - b;
  });
}

const noPads = (pads: [number, number][]) => pads.every(([b, e]) => b === 0 && e === 0);

/**
 * Builds the tfjs model that computes what the ONNX graph computes, with its weights set, and records where
 * each Conv/Dense weight came from so the repair can be written back into the ONNX bytes.
 */
export function convertGraph(graph: GraphProto, file: Uint8Array): Converted {
  const names = new Names();
  const values = new Map<string, Value>();
  /** Bindings by layer and weight index: tfjs names a weight only once its layer is built (and uniquely per process). */
  const bindings: (Omit<WeightBinding, 'name'> & { layer: tfl.layers.Layer; index: number })[] = [];
  const pending: { layer: tfl.layers.Layer; weights: tf.Tensor[] }[] = [];
  const initializerNames = new Set<string>();
  for (const init of graph.initializer) {
    if (init.name === '') invalid('an initializer has no name');
    if (initializerNames.has(init.name)) invalid(`initializer "${init.name}" is defined twice`);
    initializerNames.add(init.name);
    const v = tensorValue(init, file);
    values.set(init.name, { kind: 'const', c: { dims: v.dims, data: v.data, source: { name: init.name } } });
  }
  const inputs = graph.input.filter((i) => !initializerNames.has(i.name));
  if (inputs.length !== 1 || graph.output.length !== 1)
    unsupported(`the graph has ${inputs.length} inputs and ${graph.output.length} outputs; one of each is supported`);
  const inputInfo = inputs[0]!;
  const tensorType = inputInfo.type?.value.case === 'tensorType' ? inputInfo.type.value.value : undefined;
  if (tensorType === undefined || tensorType.elemType !== DataType.FLOAT) unsupported(`input "${inputInfo.name}" is not a float32 tensor`);
  const dims = (tensorType.shape?.dim ?? []).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : -1));
  if (dims.length !== 4 || dims.slice(1).some((d) => !(d > 0)))
    unsupported(
      `input "${inputInfo.name}" has shape [${dims.map((d) => (d < 0 ? '?' : d)).join(', ')}]; an NCHW image batch [N, C, H, W] with known C, H, W is supported`,
    );
  const [, c0, h0, w0] = dims as [number, number, number, number];
  const input = tfl.input({ shape: [h0, w0, c0], name: 'input' });
  values.set(inputInfo.name, { kind: 'sym', t: input, perm: null, squeezed: false, nonNegative: false });

  const consumers = new Map<string, NodeProto[]>();
  for (const node of graph.node) for (const i of node.input) consumers.set(i, [...(consumers.get(i) ?? []), node]);
  const fused = new Set<NodeProto>();
  const ops: string[] = [];

  const get = (name: string, node: NodeProto): Value => {
    const v = values.get(name);
    if (v === undefined) invalid(`node ${nodeName(node)} reads "${name}", which no earlier node or initializer defines`);
    return v;
  };
  const optional = (node: NodeProto, i: number): Value | null => (node.input[i] ? get(node.input[i]!, node) : null);
  const constIn = (node: NodeProto, i: number, what: string): ConstArray => {
    const v = get(node.input[i]!, node);
    if (v.kind !== 'const') unsupported(`node ${nodeName(node)} (${node.opType}): its ${what} is computed from the image, not a constant`);
    return v.c;
  };
  const symIn = (node: NodeProto, i: number): Sym => {
    const v = get(node.input[i]!, node);
    if (v.kind !== 'sym') unsupported(`node ${nodeName(node)} (${node.opType}) on a constant input`);
    return v;
  };
  /** A 4-D NHWC view of a value (a squeezed [N, C] becomes [N, 1, 1, C]). */
  const as4d = (v: Sym, node: NodeProto): tfl.SymbolicTensor => {
    if (v.t.shape.length === 4) return v.t;
    if (v.squeezed)
      return tfl.layers.reshape({ targetShape: [1, 1, v.t.shape[1]!], name: names.next(node, '_to4d') }).apply(v.t) as tfl.SymbolicTensor;
    return unsupported(`node ${nodeName(node)} (${node.opType}) needs an image-shaped (N, C, H, W) input`);
  };
  const sym = (t: tfl.SymbolicTensor, extra: Partial<Sym> = {}): Sym => ({
    kind: 'sym',
    t,
    perm: null,
    squeezed: false,
    nonNegative: false,
    ...extra,
  });
  const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[], node: NodeProto): tfl.SymbolicTensor => {
    try {
      return layer.apply(x) as tfl.SymbolicTensor;
    } catch (err) {
      if (err instanceof ShapguardError) throw err;
      return unsupported(`node ${nodeName(node)} (${node.opType}): tfjs cannot build it: ${(err as Error).message}`);
    }
  };
  const spatial = (t: tfl.SymbolicTensor): [number, number] => [t.shape[1]!, t.shape[2]!];
  const pad2d = (x: tfl.SymbolicTensor, pads: [number, number][], node: NodeProto) =>
    apply(tfl.layers.zeroPadding2d({ padding: pads as [[number, number], [number, number]], name: names.next(node, '_pad') }), x, node);

  /** A per-channel affine x·k + b of an image value, as a 1×1 depthwise convolution (tfjs has no constant layers). */
  const channelAffine = (x: Sym, k: Float32Array, b: Float32Array, node: NodeProto): Sym => {
    const t = as4d(x, node);
    const layer = tfl.layers.depthwiseConv2d({ kernelSize: 1, useBias: true, name: names.next(node) });
    const out = apply(layer, t, node);
    const ch = t.shape[3]!;
    pending.push({ layer, weights: [tf.tensor4d(k, [1, 1, ch, 1]), tf.tensor1d(b)] });
    return sym(out, { nonNegative: x.nonNegative && k.every((v) => v >= 0) && b.every((v) => v >= 0), squeezed: false });
  };

  const handlers: Record<string, (node: NodeProto, a: Attributes) => Value> = {
    Identity: (n) => get(n.input[0]!, n),
    Dropout: (n) => {
      if (n.output.length > 1 && n.output[1] !== '' && (consumers.get(n.output[1]!) ?? []).length > 0)
        unsupported(`node ${nodeName(n)} (Dropout): its mask output is used`);
      return get(n.input[0]!, n);
    },
    Constant: (n, a) => {
      const t = a.tensor('value');
      if (t !== undefined) {
        const v = tensorValue(t, null);
        return { kind: 'const', c: { dims: v.dims, data: v.data, source: null } };
      }
      if (a.has('value_float')) return { kind: 'const', c: constant([], [a.float('value_float', 0)]) };
      if (a.has('value_int')) return { kind: 'const', c: constant([], [a.int('value_int', 0)]) };
      const ints = a.ints('value_ints', null);
      if (ints !== null) return { kind: 'const', c: constant([ints.length], ints) };
      return unsupported(`node ${nodeName(n)} (Constant): attribute ${a.names().join(', ')}`);
    },
    Cast: (n, a) => {
      const v = get(n.input[0]!, n);
      const to = a.int('to', DataType.FLOAT);
      if (v.kind === 'sym') {
        if (to !== DataType.FLOAT) unsupported(`node ${nodeName(n)} casts the image to ${DataType[to] ?? to}`);
        return v;
      }
      const integer = [DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8, DataType.UINT8].includes(to);
      return { kind: 'const', c: { dims: v.c.dims, data: integer ? v.c.data.map(Math.trunc) : v.c.data.slice(), source: null } };
    },
    Shape: (n, a) => {
      const v = get(n.input[0]!, n);
      let dims: number[];
      if (v.kind === 'const') dims = v.c.dims;
      else if (v.t.shape.length === 4) dims = [BATCH, v.t.shape[3]!, v.t.shape[1]!, v.t.shape[2]!];
      else dims = v.squeezed ? [BATCH, v.t.shape[1]!, 1, 1] : [BATCH, v.t.shape[1]!];
      const start = a.int('start', 0);
      const end = a.int('end', dims.length);
      return { kind: 'const', c: slice(constant([dims.length], dims), [start], [end], null, null) };
    },
    ConstantOfShape: (n, a) => {
      const t = a.tensor('value');
      const fill = t === undefined ? 0 : (tensorValue(t, null).data[0] ?? 0);
      const d = Array.from(constIn(n, 0, 'shape').data);
      if (d.some((x) => !(x >= 0))) unsupported(`node ${nodeName(n)} (ConstantOfShape): the shape depends on the batch size`);
      return { kind: 'const', c: constant(d, new Array<number>(size(d)).fill(fill)) };
    },
    Gather: (n, a) => ({ kind: 'const', c: gather(constIn(n, 0, 'data'), constIn(n, 1, 'indices'), a.int('axis', 0)) }),
    Unsqueeze: (n, a) => {
      const axes = n.input[1] ? Array.from(constIn(n, 1, 'axes').data) : a.ints('axes', [])!;
      const c = constIn(n, 0, 'data');
      return { kind: 'const', c: { dims: unsqueezeDims(c.dims, axes), data: c.data, source: null } };
    },
    Squeeze: (n, a) => {
      const axes = n.input[1] ? Array.from(constIn(n, 1, 'axes').data) : a.ints('axes', null);
      const v = get(n.input[0]!, n);
      if (v.kind === 'sym') {
        // [N, C, 1, 1] → [N, C] after a global pool: the value tfjs already holds.
        if (v.squeezed && (axes === null || (axes.length === 2 && axes.every((x) => x === 2 || x === 3 || x === -1 || x === -2))))
          return sym(v.t, { nonNegative: v.nonNegative });
        return unsupported(`node ${nodeName(n)} (Squeeze) of an image value`);
      }
      return { kind: 'const', c: { dims: squeezeDims(v.c.dims, axes), data: v.c.data, source: null } };
    },
    Slice: (n, a) => {
      const c = constIn(n, 0, 'data');
      const list = (i: number) => (n.input[i] ? Array.from(constIn(n, i, 'slice bounds').data) : null);
      return {
        kind: 'const',
        c: slice(c, list(1) ?? a.ints('starts', [])!, list(2) ?? a.ints('ends', [])!, list(3) ?? a.ints('axes', null), list(4)),
      };
    },
    Transpose: (n, a) => ({ kind: 'const', c: transpose(constIn(n, 0, 'data'), a.ints('perm', null)) }),
    Reshape: (n, a) => {
      const target = Array.from(constIn(n, 1, 'shape').data);
      const v = get(n.input[0]!, n);
      if (v.kind === 'const') {
        if (target.some(Number.isNaN)) unsupported(`node ${nodeName(n)} (Reshape): a constant reshaped by the batch size`);
        return {
          kind: 'const',
          c: { dims: reshapeDims(v.c.dims, target, a.int('allowzero', 0) === 1, 'Reshape'), data: v.c.data, source: null },
        };
      }
      const features = v.t.shape.slice(1).reduce<number>((p, d) => p * d!, 1);
      const batchKept = target.length === 2 && (Number.isNaN(target[0]!) || target[0] === 0 || target[0] === -1);
      if (batchKept && (target[1] === features || (target[1] === -1 && target[0] !== -1))) return flatten(n, v);
      return unsupported(
        `node ${nodeName(n)} (Reshape) of an image value to [${target.map((d) => (Number.isNaN(d) ? 'N' : d)).join(', ')}]; only flattening to [N, features] is supported`,
      );
    },
    Flatten: (n, a) => {
      if (a.int('axis', 1) !== 1) unsupported(`node ${nodeName(n)} (Flatten) with axis ${a.int('axis', 1)}`);
      const v = get(n.input[0]!, n);
      if (v.kind === 'const')
        return { kind: 'const', c: { dims: [v.c.dims[0] ?? 1, size(v.c.dims.slice(1))], data: v.c.data, source: null } };
      return flatten(n, v);
    },
    Conv: (n, a) => conv(n, a),
    Gemm: (n, a) => {
      if (a.int('transA', 0) !== 0) unsupported(`node ${nodeName(n)} (Gemm) with transA`);
      const x = symIn(n, 0);
      const c = optional(n, 2);
      return dense(
        n,
        x,
        constIn(n, 1, 'weight'),
        a.int('transB', 0) === 1,
        c === null ? null : constIn(n, 2, 'bias'),
        a.float('alpha', 1),
        a.float('beta', 1),
      );
    },
    MatMul: (n) => {
      const x = symIn(n, 0);
      const w = constIn(n, 1, 'weight');
      // PyTorch exports Linear without a fused bias as MatMul → Add: fold the Add into the Dense layer.
      const next = consumers.get(n.output[0]!) ?? [];
      const add = next.length === 1 && next[0]!.opType === 'Add' ? next[0]! : null;
      const other = add === null ? undefined : values.get(add.input.find((i) => i !== n.output[0])!);
      if (add !== null && other?.kind === 'const' && other.c.data.length === w.dims[1]) {
        fused.add(add);
        const out = dense(n, x, w, false, other.c, 1, 1);
        values.set(add.output[0]!, out);
        return out;
      }
      return dense(n, x, w, false, null, 1, 1);
    },
    BatchNormalization: (n, a) => {
      if (a.int('training_mode', 0) !== 0 || n.output.filter((o) => o !== '').length > 1)
        unsupported(`node ${nodeName(n)} (BatchNormalization) in training mode`);
      const x = symIn(n, 0);
      const params = [1, 2, 3, 4].map((i) => constIn(n, i, 'statistics'));
      const ch = x.t.shape.at(-1)!;
      if (params.some((p) => p.data.length !== ch))
        invalid(`node ${nodeName(n)} (BatchNormalization): ${params.map((p) => p.data.length).join('/')} statistics for ${ch} channels`);
      const order = (p: ConstArray) => {
        const out = new Float32Array(ch);
        for (let f = 0; f < ch; f++) out[x.perm === null ? f : x.perm[f]!] = p.data[f]!;
        return out;
      };
      const layer = tfl.layers.batchNormalization({ axis: -1, epsilon: a.float('epsilon', 1e-5), name: names.next(n) });
      const out = apply(layer, x.t, n);
      pending.push({ layer, weights: params.map((p) => tf.tensor1d(order(p))) });
      return { ...x, t: out, nonNegative: false };
    },
    Relu: (n) => activate(n, tfl.layers.reLU({ name: names.next(n) }), true),
    LeakyRelu: (n, a) => activate(n, tfl.layers.leakyReLU({ alpha: a.float('alpha', 0.01), name: names.next(n) }), false),
    Sigmoid: (n) => activate(n, tfl.layers.activation({ activation: 'sigmoid', name: names.next(n) }), true),
    Tanh: (n) => activate(n, tfl.layers.activation({ activation: 'tanh', name: names.next(n) }), false),
    Clip: (n, a) => {
      const bound = (i: number, attr: string, fallback: number) => {
        const v = optional(n, i);
        if (v === null) return a.float(attr, fallback);
        if (v.kind !== 'const') unsupported(`node ${nodeName(n)} (Clip): a bound computed from the image`);
        return v.c.data[0]!;
      };
      const lo = bound(1, 'min', -Infinity);
      const hi = bound(2, 'max', Infinity);
      if (lo !== 0) unsupported(`node ${nodeName(n)} (Clip) to [${lo}, ${hi}]; only ReLU-style clips (min 0, e.g. ReLU6) are supported`);
      return activate(n, tfl.layers.reLU({ maxValue: Number.isFinite(hi) ? hi : undefined, name: names.next(n) }), true);
    },
    Softmax: (n, a) => {
      const x = symIn(n, 0);
      const axis = a.int('axis', -1);
      if (x.t.shape.length !== 2 || (axis !== -1 && axis !== 1))
        unsupported(`node ${nodeName(n)} (Softmax) over axis ${axis} of a rank-${x.t.shape.length} value`);
      return { ...x, t: apply(tfl.layers.softmax({ name: names.next(n) }), x.t, n), nonNegative: true };
    },
    LogSoftmax: (n, a) => {
      // The scan reads logits (a final softmax is left out of its graph) and log-softmax keeps every
      // prediction, so the graph's final LogSoftmax becomes a Softmax: its output is exp of the ONNX output.
      if (!graph.output.some((o) => o.name === n.output[0]))
        unsupported(`node ${nodeName(n)} (LogSoftmax) inside the graph; only as its output`);
      return handlers.Softmax!(n, a);
    },
    MaxPool: (n, a) => pool(n, a, 'max'),
    AveragePool: (n, a) => pool(n, a, 'avg'),
    GlobalAveragePool: (n) => {
      const x = symIn(n, 0);
      return sym(apply(tfl.layers.globalAveragePooling2d({ name: names.next(n) }), as4d(x, n), n), {
        squeezed: true,
        nonNegative: x.nonNegative,
      });
    },
    GlobalMaxPool: (n) => {
      const x = symIn(n, 0);
      return sym(apply(tfl.layers.globalMaxPooling2d({ name: names.next(n) }), as4d(x, n), n), {
        squeezed: true,
        nonNegative: x.nonNegative,
      });
    },
    Pad: (n, a) => {
      const x = symIn(n, 0);
      if (a.string('mode', 'constant') !== 'constant') unsupported(`node ${nodeName(n)} (Pad) in mode ${a.string('mode', 'constant')}`);
      const fill = optional(n, 2);
      if (fill !== null && (fill.kind !== 'const' || fill.c.data.some((v) => v !== 0)))
        unsupported(`node ${nodeName(n)} (Pad) with a non-zero value`);
      if (n.input[3]) unsupported(`node ${nodeName(n)} (Pad) with axes`);
      const p = Array.from(n.input[1] ? constIn(n, 1, 'pads').data : (a.ints('pads', []) ?? []));
      if (p.length !== 8 || p[0] !== 0 || p[1] !== 0 || p[4] !== 0 || p[5] !== 0 || p.some((v) => !(v >= 0)))
        unsupported(`node ${nodeName(n)} (Pad) with pads [${p.join(', ')}]; non-negative padding of height and width only is supported`);
      const pads: [number, number][] = [
        [p[2]!, p[6]!],
        [p[3]!, p[7]!],
      ];
      if (noPads(pads)) return x;
      return sym(pad2d(as4d(x, n), pads, n), { nonNegative: x.nonNegative });
    },
    Concat: (n, a) => {
      const parts = n.input.map((i) => get(i, n));
      if (parts.every((p) => p.kind === 'const'))
        return {
          kind: 'const',
          c: concat(
            parts.map((p) => (p as { c: ConstArray }).c),
            a.int('axis', 0),
          ),
        };
      const axis = a.int('axis', 0);
      const syms = parts.map((p) => (p.kind === 'sym' ? p : unsupported(`node ${nodeName(n)} (Concat) of an image value with a constant`)));
      const rank = syms[0]!.squeezed ? 4 : syms[0]!.t.shape.length;
      if (axis !== 1 && axis !== 1 - rank)
        unsupported(`node ${nodeName(n)} (Concat) along axis ${axis}; only channels (axis 1) are supported`);
      if (syms.some((s) => !isIdentity(s.perm))) unsupported(`node ${nodeName(n)} (Concat) of flattened feature maps`);
      const t = apply(
        tfl.layers.concatenate({ axis: -1, name: names.next(n) }),
        syms.map((s) => (rank === 4 ? as4d(s, n) : s.t)),
        n,
      );
      return sym(t, { nonNegative: syms.every((s) => s.nonNegative) });
    },
    Add: (n) => arithmetic(n, 'Add'),
    Sub: (n) => arithmetic(n, 'Sub'),
    Mul: (n) => arithmetic(n, 'Mul'),
    Div: (n) => arithmetic(n, 'Div'),
  };

  function flatten(n: NodeProto, v: Sym): Sym {
    if (v.t.shape.length === 2) return sym(v.t, { perm: v.perm, nonNegative: v.nonNegative });
    const [, h, w, ch] = v.t.shape as [null, number, number, number];
    const perm = new Int32Array(h * w * ch);
    for (let c = 0; c < ch; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) perm[(c * h + y) * w + x] = (y * w + x) * ch + c;
    return sym(apply(tfl.layers.flatten({ name: names.next(n) }), v.t, n), { perm, nonNegative: v.nonNegative });
  }

  function activate(n: NodeProto, layer: tfl.layers.Layer, nonNegative: boolean): Sym {
    const x = symIn(n, 0);
    return { ...x, t: apply(layer, x.t, n), nonNegative };
  }

  function conv(n: NodeProto, a: Attributes): Sym {
    const x = symIn(n, 0);
    const t = as4d(x, n);
    const w = constIn(n, 1, 'weight');
    const b = optional(n, 2) === null ? null : constIn(n, 2, 'bias');
    if (w.dims.length !== 4) unsupported(`node ${nodeName(n)} (Conv) with a rank-${w.dims.length} kernel; 2-D convolutions are supported`);
    const [out, inPerGroup, kh, kw] = w.dims as [number, number, number, number];
    const ch = t.shape[3]!;
    const group = a.int('group', 1);
    if (inPerGroup * group !== ch) invalid(`node ${nodeName(n)} (Conv): kernel reads ${inPerGroup}×${group} channels, the input has ${ch}`);
    if (b !== null && b.data.length !== out) invalid(`node ${nodeName(n)} (Conv): ${b.data.length} biases for ${out} filters`);
    const ks = a.ints('kernel_shape', [kh, kw])!;
    if (ks[0] !== kh || ks[1] !== kw) invalid(`node ${nodeName(n)} (Conv): kernel_shape [${ks.join(', ')}] but the weight is ${kh}×${kw}`);
    const strides = (a.ints('strides', [1, 1]) ?? [1, 1]) as [number, number];
    const dilations = (a.ints('dilations', [1, 1]) ?? [1, 1]) as [number, number];
    const pads = explicitPads(a, spatial(t), [kh, kw], strides, dilations, `node ${nodeName(n)} (Conv)`);
    // tfjs computes no gradient through a dilated convolution (4.22), and the scan needs input gradients: a
    // dilated kernel is the same convolution as an undilated one with zeros between its taps, exactly.
    const [dh, dw] = dilations;
    const [eh, ew] = [(kh - 1) * dh + 1, (kw - 1) * dw + 1];
    const same = !noPads(pads) && isTfSame(pads, spatial(t), [eh, ew], strides, [1, 1]);
    const inputT = noPads(pads) || same ? t : pad2d(t, pads, n);
    const common = {
      kernelSize: [eh, ew] as [number, number],
      strides,
      padding: same ? ('same' as const) : ('valid' as const),
      useBias: b !== null,
      name: names.next(n),
    };
    /** The ONNX kernel element [y, x] of an expanded tap, or null where the expansion put a zero. */
    const tap = (ey: number, ex: number): [number, number] | null => (ey % dh === 0 && ex % dw === 0 ? [ey / dh, ex / dw] : null);
    const kernelShape = [eh, ew];
    let layer: tfl.layers.Layer;
    let map: Int32Array;
    if (group === 1) {
      layer = tfl.layers.conv2d({ ...common, filters: out });
      kernelShape.push(ch, out);
      // tfjs [kh, kw, in, out] ← ONNX [out, in, kh, kw]; −1: a zero of the dilation.
      map = new Int32Array(out * ch * eh * ew).fill(-1);
      for (let ey = 0; ey < eh; ey++)
        for (let ex = 0; ex < ew; ex++) {
          const k = tap(ey, ex);
          if (k === null) continue;
          for (let i = 0; i < ch; i++)
            for (let o = 0; o < out; o++) map[((ey * ew + ex) * ch + i) * out + o] = ((o * ch + i) * kh + k[0]) * kw + k[1];
        }
    } else if (group === ch && out % ch === 0) {
      const m = out / ch;
      layer = tfl.layers.depthwiseConv2d({ ...common, depthMultiplier: m });
      kernelShape.push(ch, m);
      // tfjs [kh, kw, in, m] ← ONNX [in·m + j, 1, kh, kw]
      map = new Int32Array(out * eh * ew).fill(-1);
      for (let ey = 0; ey < eh; ey++)
        for (let ex = 0; ex < ew; ex++) {
          const k = tap(ey, ex);
          if (k === null) continue;
          for (let i = 0; i < ch; i++)
            for (let j = 0; j < m; j++) map[((ey * ew + ex) * ch + i) * m + j] = ((i * m + j) * kh + k[0]) * kw + k[1];
        }
    } else {
      return unsupported(
        `node ${nodeName(n)} (Conv) with ${group} groups over ${ch} channels; plain and depthwise convolutions are supported`,
      );
    }
    const outT = apply(layer, inputT, n);
    const kernel = Float32Array.from(map, (j) => (j < 0 ? 0 : w.data[j]!));
    pending.push({ layer, weights: [tf.tensor(kernel, kernelShape), ...(b === null ? [] : [tf.tensor1d(Float32Array.from(b.data))])] });
    if (w.source !== null) bindings.push({ layer, index: 0, shape: kernelShape, initializer: w.source.name, map, scale: 1 });
    if (b !== null && b.source !== null)
      bindings.push({ layer, index: 1, shape: [out], initializer: b.source.name, map: range(out), scale: 1 });
    return sym(outT);
  }

  function dense(n: NodeProto, x: Sym, w: ConstArray, transB: boolean, c: ConstArray | null, alpha: number, beta: number): Sym {
    if (x.t.shape.length !== 2) unsupported(`node ${nodeName(n)} (${n.opType}) of a rank-${x.t.shape.length} value; flatten it first`);
    if (w.dims.length !== 2) unsupported(`node ${nodeName(n)} (${n.opType}) with a rank-${w.dims.length} weight`);
    const [k, m] = (transB ? [w.dims[1], w.dims[0]] : w.dims) as [number, number];
    const features = x.t.shape[1]!;
    if (k !== features) invalid(`node ${nodeName(n)} (${n.opType}): weight reads ${k} features, the input has ${features}`);
    if (c !== null && c.data.length !== m && c.data.length !== 1)
      invalid(`node ${nodeName(n)} (${n.opType}): ${c.data.length} biases for ${m} units`);
    // tfjs kernel [k, m], rows in tfjs feature order ← ONNX B [k, m] or [m, k] (transB), rows in ONNX order.
    const map = new Int32Array(k * m);
    for (let f = 0; f < k; f++) {
      const row = x.perm === null ? f : x.perm[f]!;
      for (let u = 0; u < m; u++) map[row * m + u] = transB ? u * k + f : f * m + u;
    }
    const kernel = Float32Array.from(map, (j) => alpha * w.data[j]!);
    const name = names.next(n);
    const layer = tfl.layers.dense({ units: m, useBias: c !== null, name });
    const out = apply(layer, x.t, n);
    const bias = c === null ? null : Float32Array.from({ length: m }, (_, u) => beta * c.data[c.data.length === 1 ? 0 : u]!);
    pending.push({ layer, weights: [tf.tensor2d(kernel, [k, m]), ...(bias === null ? [] : [tf.tensor1d(bias)])] });
    if (w.source !== null) bindings.push({ layer, index: 0, shape: [k, m], initializer: w.source.name, map, scale: alpha });
    if (c !== null && c.source !== null && c.data.length === m)
      bindings.push({ layer, index: 1, shape: [m], initializer: c.source.name, map: range(m), scale: beta });
    return sym(out);
  }

  function pool(n: NodeProto, a: Attributes, kind: 'max' | 'avg'): Sym {
    const x = symIn(n, 0);
    const t = as4d(x, n);
    const what = `node ${nodeName(n)} (${n.opType})`;
    if (n.output.filter((o) => o !== '').length > 1) unsupported(`${what} with an indices output`);
    const k = (a.ints('kernel_shape', null) ?? unsupported(`${what} without kernel_shape`)) as [number, number];
    if (k.length !== 2) unsupported(`${what} over ${k.length} dims; 2-D pools are supported`);
    const strides = (a.ints('strides', [1, 1]) ?? [1, 1]) as [number, number];
    const dilations = (a.ints('dilations', [1, 1]) ?? [1, 1]) as [number, number];
    if (dilations.some((d) => d !== 1)) unsupported(`${what} with dilations`);
    if (a.int('storage_order', 0) !== 0) unsupported(`${what} with column-major storage order`);
    const input = spatial(t);
    const pads = explicitPads(a, input, k, strides, dilations, what);
    const outSize = (i: number, round: (v: number) => number) => round((input[i]! + pads[i]![0] + pads[i]![1] - k[i]!) / strides[i]!) + 1;
    if (a.int('ceil_mode', 0) === 1 && [0, 1].some((i) => outSize(i, Math.ceil) !== outSize(i, Math.floor)))
      unsupported(
        `${what} with ceil_mode where it adds a partial window (input ${input.join('×')}, kernel ${k.join('×')}, stride ${strides.join('×')})`,
      );
    const countPads = a.int('count_include_pad', 0) === 1;
    const make = (padding: 'valid' | 'same') =>
      (kind === 'max' ? tfl.layers.maxPooling2d : tfl.layers.averagePooling2d)({ poolSize: k, strides, padding, name: names.next(n) });
    let out: tfl.SymbolicTensor;
    if (noPads(pads)) out = apply(make('valid'), t, n);
    else if ((kind === 'max' || !countPads) && isTfSame(pads, input, k, strides, dilations)) out = apply(make('same'), t, n);
    else if ((kind === 'avg' && countPads) || (kind === 'max' && x.nonNegative)) out = apply(make('valid'), pad2d(t, pads, n), n);
    else
      return unsupported(
        kind === 'max'
          ? `${what} with pads [${pads.flat().join(', ')}] on values that may be negative (ONNX pads with −∞)`
          : `${what} with pads [${pads.flat().join(', ')}] that exclude the padding from the average`,
      );
    return sym(out, { nonNegative: x.nonNegative });
  }

  function arithmetic(n: NodeProto, op: 'Add' | 'Sub' | 'Mul' | 'Div'): Value {
    const [l, r] = [get(n.input[0]!, n), get(n.input[1]!, n)];
    const f = {
      Add: (p: number, q: number) => p + q,
      Sub: (p: number, q: number) => p - q,
      Mul: (p: number, q: number) => p * q,
      Div: (p: number, q: number) => p / q,
    }[op];
    if (l.kind === 'const' && r.kind === 'const') return { kind: 'const', c: broadcast(l.c, r.c, f, op) };
    if (l.kind === 'sym' && r.kind === 'sym') {
      if (op !== 'Add' && op !== 'Mul') unsupported(`node ${nodeName(n)} (${op}) of two image values`);
      if (l.t.shape.join() !== r.t.shape.join() || !isIdentity(l.perm) || !isIdentity(r.perm))
        unsupported(`node ${nodeName(n)} (${op}) of values with different shapes`);
      const layer = op === 'Add' ? tfl.layers.add({ name: names.next(n) }) : tfl.layers.multiply({ name: names.next(n) });
      return sym(apply(layer, [l.t, r.t], n), { nonNegative: l.nonNegative && r.nonNegative, squeezed: l.squeezed });
    }
    const x = (l.kind === 'sym' ? l : r) as Sym;
    const c = (l.kind === 'const' ? l.c : (r as { c: ConstArray }).c) as ConstArray;
    const constFirst = l.kind === 'const';
    if (op === 'Div' && constFirst) unsupported(`node ${nodeName(n)} (Div) of a constant by the image`);
    // x·k + b for each op and side; a constant on the left of Sub negates the image.
    const affine = (v: number): [number, number] =>
      op === 'Add' ? [1, v] : op === 'Sub' ? (constFirst ? [-1, v] : [1, -v]) : op === 'Mul' ? [v, 0] : [1 / v, 0];
    if (c.data.length === 1) {
      const [scale, offset] = affine(c.data[0]!);
      const out = apply(tfl.layers.rescaling({ scale, offset, name: names.next(n) }), x.t, n);
      return { ...x, t: out, nonNegative: x.nonNegative && scale >= 0 && offset >= 0 };
    }
    const rank4 = x.t.shape.length === 4 || x.squeezed;
    const ch = x.t.shape.at(-1)!;
    const perChannel = rank4 && c.data.length === ch && c.dims.length >= 3 && c.dims.at(-1) === 1 && c.dims.at(-2) === 1;
    if (!perChannel)
      unsupported(
        `node ${nodeName(n)} (${op}) of an image value and a constant of shape [${c.dims.join(', ')}]; scalars and per-channel constants are supported`,
      );
    const k = new Float32Array(ch);
    const b = new Float32Array(ch);
    for (let i = 0; i < ch; i++) [k[i], b[i]] = affine(c.data[i]!);
    return channelAffine(x, k, b, n);
  }

  for (const node of graph.node) {
    if (fused.has(node)) continue;
    const handler = handlers[node.opType];
    if (handler === undefined) unsupported(`node ${nodeName(node)}: op ${node.opType} is not supported`);
    ops.push(node.opType);
    const out = handler(node, new Attributes(node));
    if (node.output[0] === undefined || node.output[0] === '') invalid(`node ${nodeName(node)} has no output`);
    values.set(node.output[0], out);
  }
  const result = values.get(graph.output[0]!.name);
  if (result === undefined || result.kind !== 'sym')
    unsupported(`the graph's output "${graph.output[0]!.name}" is not computed from the input image`);
  if (result.t.shape.length !== 2 || !isIdentity(result.perm))
    unsupported(`the graph's output has shape [${result.t.shape.join(', ')}]; class scores [N, classes] are expected`);
  const model = tfl.model({ inputs: input, outputs: result.t, name: 'onnx' });
  for (const { layer, weights } of pending) {
    layer.setWeights(weights);
    tf.dispose(weights);
  }
  // Nodes that do not lead to the output build layers the model leaves out; their weights are not the model's.
  const inModel = new Set(model.layers);
  const named = bindings
    .filter((b) => inModel.has(b.layer))
    .map(({ layer, index, ...b }) => ({ ...b, name: layer.weights[index]!.originalName }));
  return { model, bindings: named, ops };
}
