import { clone, toBinary } from '@bufbuild/protobuf';
import { errorsIn, ShapguardError } from '../../errors.ts';
import type { LoadedModel } from '../loaded-model.ts';
import { convertGraph } from './convert.ts';
import { decodeModel, tensorValue } from './decode.ts';
import { ModelProtoSchema } from './onnx_pb.ts';

const onnxErrors = errorsIn('ONNX');
const invalid: (message: string) => never = onnxErrors.invalid;
const unsupported: (message: string) => never = onnxErrors.unsupported;

/**
 * Loads a .onnx model into tfjs (NCHW translated to the engine's NHWC once, at load) for the scan. The
 * repaired model is the original bytes with only the pruned values overwritten where raw_data holds them;
 * a pruned weight stored as float_data makes the file be re-encoded by the protobuf library.
 */
export async function loadOnnxModel(files: ReadonlyMap<string, Uint8Array>, entry: string): Promise<LoadedModel> {
  const bytes = files.get(entry) ?? invalid(`${entry} is missing`);
  const proto = decodeModel(bytes, entry);
  const { model, bindings } = convertGraph(proto.graph!, bytes);
  const names = new Set(model.weights.map((w) => w.originalName));
  const lost = bindings.find((b) => !names.has(b.name));
  if (lost !== undefined) {
    model.dispose();
    throw new ShapguardError('internal', `ONNX: weight ${lost.name} is not in the tfjs model`);
  }
  const initializers = new Map(proto.graph!.initializer.map((t) => [t.name, t]));
  return {
    model,
    format: 'onnx',
    entry,
    files,
    weights: bindings.map((b) => ({ name: b.name, shape: b.shape })),
    write: async (changed) => {
      const out = bytes.slice();
      const view = new DataView(out.buffer);
      // Each changed raw_data initializer's offset, read once, for the re-encode below.
      const rawChanged = new Map<string, number>();
      const floatChanged = new Map<string, Float32Array>();
      for (const [name, values] of changed) {
        const binding =
          bindings.find((b) => b.name === name) ??
          unsupported(`weight ${name} does not come from one initializer, so it cannot be written back`);
        const original = tensorValue(initializers.get(binding.initializer)!, bytes);
        if (values.length !== binding.map.length)
          throw new ShapguardError('internal', `ONNX: ${values.length} values for weight ${name} of ${binding.map.length}`);
        const floats = original.rawOffset === null ? (floatChanged.get(binding.initializer) ?? Float32Array.from(original.data)) : null;
        for (let i = 0; i < values.length; i++) {
          const j = binding.map[i]!;
          if (j < 0) {
            if (values[i] !== 0) throw new ShapguardError('internal', `ONNX: weight ${name} changed a zero of its dilation`);
            continue;
          }
          // Only changed elements are written, so every other value keeps its bytes even where a scale applies.
          if (values[i] === Math.fround(binding.scale * original.data[j]!)) continue;
          const v = values[i]! / binding.scale;
          if (floats === null) view.setFloat32(original.rawOffset! + 4 * j, v, true);
          else floats[j] = v;
        }
        if (floats === null) rawChanged.set(binding.initializer, original.rawOffset!);
        else floatChanged.set(binding.initializer, floats);
      }
      let patched: Uint8Array = out;
      if (floatChanged.size > 0) {
        // float_data has no fixed place in the file: re-encode, every raw_data patch carried over.
        const copy = clone(ModelProtoSchema, proto);
        for (const t of copy.graph!.initializer) {
          const floats = floatChanged.get(t.name);
          if (floats !== undefined) t.floatData = Array.from(floats);
          else {
            const at = rawChanged.get(t.name);
            if (at !== undefined) t.rawData = out.slice(at, at + t.rawData.byteLength);
          }
        }
        patched = toBinary(ModelProtoSchema, copy);
      }
      return new Map([...files].map(([p, b]) => [p, p === entry ? patched : b.slice()]));
    },
  };
}
