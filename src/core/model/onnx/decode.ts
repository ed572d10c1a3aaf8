import { fromBinary, isFieldSet, type DescMessage } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { errorsIn } from '../../errors.ts';
import {
  AttributeProto_AttributeType as AttrType,
  ModelProtoSchema,
  TensorProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType as DataType,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './onnx_pb.ts';

const onnxErrors = errorsIn('ONNX');
const invalid: (message: string) => never = onnxErrors.invalid;
const unsupported: (message: string) => never = onnxErrors.unsupported;

/** Caps on an ONNX file, so a hostile one is refused before it costs memory or stack. */
export const ONNX_LIMITS = {
  fileBytes: 256 * 1024 * 1024,
  /** Nodes in the main graph (the zoo's CNNs have tens; ResNet-50 has a few hundred). */
  nodes: 20_000,
  /** Elements in one tensor (initializer or constant). */
  tensorElements: 64 * 1024 * 1024,
  /** How deep messages may nest: a model is ModelProto → GraphProto → NodeProto → AttributeProto → TensorProto. */
  depth: 24,
  /** Opsets whose operator semantics the converter implements. */
  opsets: [11, 21] as const,
};

/** The ops' own domain: "" and "ai.onnx" name the same one. */
export const isDefaultDomain = (domain: string) => domain === '' || domain === 'ai.onnx';

/**
 * Refuses messages nested deeper than the cap before the protobuf library recurses into them: a file of
 * nothing but nested graph attributes would otherwise exhaust the stack. Walks the wire format with the
 * schema, skipping every field that is not a message.
 */
function checkNesting(bytes: Uint8Array, desc: DescMessage, depth: number): void {
  if (depth > ONNX_LIMITS.depth) invalid(`messages nest deeper than ${ONNX_LIMITS.depth} levels (${desc.typeName})`);
  const reader = new BinaryReader(bytes);
  try {
    while (reader.pos < reader.len) {
      const [no, wireType] = reader.tag();
      const field = desc.fields.find((f) => f.number === no);
      const message = field?.message;
      if (message !== undefined && wireType === WireType.LengthDelimited) checkNesting(reader.bytes(), message, depth + 1);
      else reader.skip(wireType, no);
    }
  } catch (err) {
    if (err instanceof RangeError || (err instanceof Error && !('kind' in err))) invalid(`not a valid ONNX protobuf: ${err.message}`);
    throw err;
  }
}

/** Decodes a .onnx file (a ModelProto) after the size and nesting checks, and refuses what it cannot read. */
export function decodeModel(bytes: Uint8Array, what: string): ModelProto {
  if (bytes.byteLength > ONNX_LIMITS.fileBytes)
    invalid(`${what} is ${bytes.byteLength} bytes, over the ${ONNX_LIMITS.fileBytes}-byte limit`);
  checkNesting(bytes, ModelProtoSchema, 0);
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes);
  } catch (err) {
    invalid(`${what} is not a valid ONNX protobuf: ${(err as Error).message}`);
  }
  const graph = model.graph;
  if (graph === undefined || graph.node.length === 0) invalid(`${what} holds no graph (not an ONNX model file)`);
  if (model.functions.length > 0) unsupported(`${what} defines model-local functions (${model.functions.map((f) => f.name).join(', ')})`);
  if (model.trainingInfo.length > 0) unsupported(`${what} is a training graph (it has training_info)`);
  const opset = model.opsetImport.find((o) => isDefaultDomain(o.domain));
  const version = opset === undefined ? NaN : Number(opset.version);
  const [lo, hi] = ONNX_LIMITS.opsets;
  if (!(version >= lo && version <= hi))
    unsupported(`${what} uses opset ${Number.isNaN(version) ? 'none' : version}; opsets ${lo}–${hi} are supported`);
  if (graph.node.length > ONNX_LIMITS.nodes) invalid(`${what} has ${graph.node.length} nodes, over the ${ONNX_LIMITS.nodes}-node limit`);
  if (graph.sparseInitializer.length > 0)
    unsupported(`${what} has sparse initializers (${graph.sparseInitializer[0]!.values?.name ?? '?'})`);
  for (const node of graph.node) {
    if (!isDefaultDomain(node.domain)) unsupported(`node ${nodeName(node)} is op ${node.opType} of the custom domain "${node.domain}"`);
    // If/Loop/Scan bodies: the converter maps straight-line graphs only, so subgraphs are refused unread.
    if (node.attribute.some((a) => a.type === AttrType.GRAPH || a.type === AttrType.GRAPHS || a.g !== undefined || a.graphs.length > 0))
      unsupported(`node ${nodeName(node)} (${node.opType}) has a subgraph`);
  }
  return model;
}

/** How messages name a node: its name, else its op and first output. */
export function nodeName(node: NodeProto): string {
  return node.name !== '' ? `"${node.name}"` : `${node.opType} → "${node.output[0] ?? '?'}"`;
}

/** A tensor's numbers and dims, and, for float32 raw_data, where its bytes sit in the file. */
export interface TensorValue {
  dims: number[];
  /** float32 tensors as Float32Array, integer and double ones as Float64Array (int64 magnitudes beyond 2^53 round). */
  data: Float32Array | Float64Array;
  /** Byte offset of raw_data in the file (float32 tensors stored as raw_data), else null. */
  rawOffset: number | null;
}

const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * A TensorProto's values. `file` is the decoded buffer, to find where raw_data lies (the protobuf library
 * hands out views into it), which is how a repair writes the pruned values back in place.
 */
export function tensorValue(t: TensorProto, file: Uint8Array | null): TensorValue {
  const name = t.name !== '' ? `tensor "${t.name}"` : 'a constant tensor';
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0)
    unsupported(`${name} is stored in an external data file`);
  if (t.segment !== undefined) unsupported(`${name} is a segment of a larger tensor`);
  const dims = t.dims.map((d) => {
    const n = Number(d);
    if (!(n >= 0) || !Number.isSafeInteger(n)) invalid(`${name} has an invalid dimension ${d}`);
    return n;
  });
  const n = count(dims);
  if (n > ONNX_LIMITS.tensorElements) invalid(`${name} has ${n} elements, over the ${ONNX_LIMITS.tensorElements}-element limit`);
  // raw_data takes precedence whenever present, even empty, as the ONNX spec (and onnx's own reader) has it.
  const raw = isFieldSet(t, TensorProtoSchema.field.rawData) ? t.rawData : null;
  const width: Partial<Record<DataType, number>> = { [DataType.FLOAT]: 4, [DataType.DOUBLE]: 8, [DataType.INT64]: 8, [DataType.INT32]: 4 };
  const w = width[t.dataType as DataType];
  if (w === undefined)
    unsupported(`${name} has data type ${DataType[t.dataType] ?? t.dataType}; float32, float64, int32 and int64 are read`);
  if (raw !== null) {
    if (raw.byteLength !== n * w) invalid(`${name}: dims [${dims.join(', ')}] need ${n * w} bytes of raw_data, it has ${raw.byteLength}`);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (t.dataType === DataType.FLOAT) {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(4 * i, true);
      const rawOffset = file !== null && raw.buffer === file.buffer ? raw.byteOffset - file.byteOffset : null;
      return { dims, data, rawOffset };
    }
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      data[i] =
        t.dataType === DataType.DOUBLE
          ? view.getFloat64(8 * i, true)
          : t.dataType === DataType.INT32
            ? view.getInt32(4 * i, true)
            : Number(view.getBigInt64(8 * i, true));
    }
    return { dims, data, rawOffset: null };
  }
  const typed: ArrayLike<number | bigint> =
    t.dataType === DataType.FLOAT
      ? t.floatData
      : t.dataType === DataType.DOUBLE
        ? t.doubleData
        : t.dataType === DataType.INT32
          ? t.int32Data
          : t.int64Data;
  if (typed.length !== n) invalid(`${name}: dims [${dims.join(', ')}] need ${n} values, it has ${typed.length}`);
  const data = t.dataType === DataType.FLOAT ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = Number(typed[i]);
  return { dims, data, rawOffset: null };
}

/** A node's attributes by name, each read as the type the op's spec gives it. */
export class Attributes {
  private readonly byName: Map<string, AttributeProto>;
  constructor(private readonly node: NodeProto) {
    this.byName = new Map(node.attribute.map((a) => [a.name, a]));
    for (const a of node.attribute) {
      if (a.refAttrName !== '') unsupported(`node ${nodeName(node)}: attribute ${a.name} refers to a function attribute`);
    }
  }
  int(name: string, fallback: number): number {
    const a = this.byName.get(name);
    return a === undefined ? fallback : Number(a.i);
  }
  float(name: string, fallback: number): number {
    const a = this.byName.get(name);
    return a === undefined ? fallback : a.f;
  }
  ints(name: string, fallback: number[] | null): number[] | null {
    const a = this.byName.get(name);
    return a === undefined ? fallback : a.ints.map(Number);
  }
  string(name: string, fallback: string): string {
    const a = this.byName.get(name);
    return a === undefined ? fallback : new TextDecoder().decode(a.s);
  }
  tensor(name: string): TensorProto | undefined {
    return this.byName.get(name)?.t;
  }
  has(name: string): boolean {
    return this.byName.has(name);
  }
  names(): string[] {
    return [...this.byName.keys()];
  }
}

export type { GraphProto, ModelProto, NodeProto, TensorProto };
