import { errorsIn } from '../../errors.ts';

const onnxErrors = errorsIn('ONNX');
const unsupported: (message: string) => never = onnxErrors.unsupported;

/**
 * A constant of the graph: an initializer, a Constant node, or what the shape arithmetic PyTorch exports
 * (Shape → Gather → Unsqueeze → Concat → Reshape, the padding chains) computes from them. The loader folds
 * these here, so the tfjs model only holds the layers that act on images.
 */
export interface ConstArray {
  dims: number[];
  data: Float32Array | Float64Array;
  /** The initializer it is (weights), so a repair can write it back; null once computed from others. */
  source: { name: string } | null;
}

/** The batch dimension in a Shape's output: not a number, so arithmetic on it shows up as NaN. */
export const BATCH = Number.NaN;

export const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

export function constant(dims: number[], data: ArrayLike<number>): ConstArray {
  return { dims, data: Float64Array.from(data), source: null };
}

function strides(dims: readonly number[]): number[] {
  const out = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) out[i] = out[i + 1]! * dims[i + 1]!;
  return out;
}

const axisOf = (axis: number, rank: number, op: string) => {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) unsupported(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
};

/** numpy-style broadcasting of a binary op, as ONNX's Add/Sub/Mul/Div define it. */
export function broadcast(a: ConstArray, b: ConstArray, f: (x: number, y: number) => number, op: string): ConstArray {
  const rank = Math.max(a.dims.length, b.dims.length);
  const pad = (d: number[]) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const da = pad(a.dims);
  const db = pad(b.dims);
  const dims = da.map((x, i) => {
    const y = db[i]!;
    if (x !== y && x !== 1 && y !== 1) unsupported(`${op}: shapes [${a.dims.join(', ')}] and [${b.dims.join(', ')}] do not broadcast`);
    return Math.max(x, y);
  });
  const sa = strides(da);
  const sb = strides(db);
  const so = strides(dims);
  const out = new Float64Array(size(dims));
  for (let i = 0; i < out.length; i++) {
    let ia = 0;
    let ib = 0;
    for (let k = 0; k < rank; k++) {
      const c = Math.floor(i / so[k]!) % dims[k]!;
      if (da[k] !== 1) ia += c * sa[k]!;
      if (db[k] !== 1) ib += c * sb[k]!;
    }
    out[i] = f(a.data[ia]!, b.data[ib]!);
  }
  return { dims, data: out, source: null };
}

/** ONNX Reshape's target dims: 0 copies the input's dim, one -1 takes what is left. */
export function reshapeDims(from: readonly number[], target: readonly number[], allowZero: boolean, op: string): number[] {
  const dims = target.map((d, i) => (d === 0 && !allowZero ? from[i]! : d));
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const free = dims.filter((d) => d === -1).length;
  if (free > 1) unsupported(`${op}: more than one -1 in the target shape`);
  const total = size(from);
  if (free === 1) {
    if (known === 0 || total % known !== 0) unsupported(`${op}: cannot reshape [${from.join(', ')}] to [${target.join(', ')}]`);
    return dims.map((d) => (d === -1 ? total / known : d));
  }
  if (known !== total) unsupported(`${op}: cannot reshape [${from.join(', ')}] to [${target.join(', ')}]`);
  return dims;
}

export function transpose(a: ConstArray, perm: number[] | null): ConstArray {
  const rank = a.dims.length;
  const p = perm ?? [...a.dims.keys()].reverse();
  const dims = p.map((k) => a.dims[k]!);
  const si = strides(a.dims);
  const so = strides(dims);
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) {
    let src = 0;
    for (let k = 0; k < rank; k++) src += (Math.floor(i / so[k]!) % dims[k]!) * si[p[k]!]!;
    out[i] = a.data[src]!;
  }
  return { dims, data: out, source: null };
}

/** ONNX Slice (opset ≥ 10: starts, ends, axes, steps as inputs), with its clamping rules. */
export function slice(a: ConstArray, starts: number[], ends: number[], axes: number[] | null, steps: number[] | null): ConstArray {
  const rank = a.dims.length;
  const lo = new Array<number>(rank).fill(0);
  const step = new Array<number>(rank).fill(1);
  const dims = [...a.dims];
  (axes ?? starts.map((_, i) => i)).forEach((axis0, j) => {
    const k = axisOf(axis0, rank, 'Slice');
    const d = a.dims[k]!;
    const s = steps?.[j] ?? 1;
    if (s === 0) unsupported('Slice: a step of 0');
    const clamp = (v: number, min: number, max: number) => Math.min(Math.max(v < 0 ? v + d : v, min), max);
    const start = s > 0 ? clamp(starts[j]!, 0, d) : clamp(starts[j]!, -1, d - 1);
    const end = s > 0 ? clamp(ends[j]!, 0, d) : clamp(ends[j]!, -1, d - 1);
    lo[k] = start;
    step[k] = s;
    dims[k] = Math.max(0, Math.ceil((end - start) / s));
  });
  const si = strides(a.dims);
  const so = strides(dims);
  const out = new Float64Array(size(dims));
  for (let i = 0; i < out.length; i++) {
    let src = 0;
    for (let k = 0; k < rank; k++) src += (lo[k]! + (Math.floor(i / so[k]!) % dims[k]!) * step[k]!) * si[k]!;
    out[i] = a.data[src]!;
  }
  return { dims, data: out, source: null };
}

export function gather(a: ConstArray, indices: ConstArray, axis0: number): ConstArray {
  const axis = axisOf(axis0, a.dims.length, 'Gather');
  const d = a.dims[axis]!;
  const outer = size(a.dims.slice(0, axis));
  const inner = size(a.dims.slice(axis + 1));
  const idx = Array.from(indices.data, (v) => {
    const j = v < 0 ? v + d : v;
    if (!(j >= 0 && j < d)) unsupported(`Gather: index ${v} is out of range for a dimension of ${d}`);
    return j;
  });
  const dims = [...a.dims.slice(0, axis), ...indices.dims, ...a.dims.slice(axis + 1)];
  const out = new Float64Array(size(dims));
  let o = 0;
  for (let p = 0; p < outer; p++) for (const j of idx) for (let q = 0; q < inner; q++) out[o++] = a.data[(p * d + j) * inner + q]!;
  return { dims, data: out, source: null };
}

export function concat(parts: ConstArray[], axis0: number): ConstArray {
  const rank = parts[0]!.dims.length;
  const axis = axisOf(axis0, rank, 'Concat');
  const outer = size(parts[0]!.dims.slice(0, axis));
  const dims = [...parts[0]!.dims];
  dims[axis] = parts.reduce((s, p) => s + p.dims[axis]!, 0);
  const out = new Float64Array(size(dims));
  let o = 0;
  for (let p = 0; p < outer; p++) {
    for (const part of parts) {
      const block = size(part.dims.slice(axis));
      out.set(part.data.subarray(p * block, (p + 1) * block), o);
      o += block;
    }
  }
  return { dims, data: out, source: null };
}

/** Unsqueeze's and Squeeze's new dims (axes may be negative, counted in the output's or input's rank). */
export function unsqueezeDims(dims: readonly number[], axes: number[]): number[] {
  const rank = dims.length + axes.length;
  const at = new Set(axes.map((a) => axisOf(a, rank, 'Unsqueeze')));
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(at.has(i) ? 1 : dims[k++]!);
  return out;
}

export function squeezeDims(dims: readonly number[], axes: number[] | null): number[] {
  const at = axes === null ? null : new Set(axes.map((a) => axisOf(a, dims.length, 'Squeeze')));
  return dims.filter((d, i) => (at === null ? d !== 1 : !at.has(i)));
}
