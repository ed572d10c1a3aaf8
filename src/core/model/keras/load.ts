import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { invalid, ShapguardError } from '../../errors.ts';
import { locateFloats, readFloats, rewriteFilteredFloats } from '../hdf5/data.ts';
import { H5File, type DatasetInfo } from '../hdf5/file.ts';
import type { LoadedModel, ModelFormat, WritableWeight } from '../loaded-model.ts';
import { convertKerasConfig, type KerasLayer } from './config.ts';
import { layerDatasets } from './weights.ts';
import { readEntry, readZip, replaceEntry } from './zip.ts';

/** Caps for Keras inputs, beside the HDF5 and zip structural caps. */
export const KERAS_LIMITS = {
  fileBytes: 256 * 1024 * 1024,
  configBytes: 8 * 1024 * 1024,
};

const WEIGHTS_ENTRY = 'model.weights.h5';

function parseConfig(text: unknown, what: string): unknown {
  if (typeof text !== 'string') invalid(`${what} is missing or not a string`);
  if (text.length > KERAS_LIMITS.configBytes) invalid(`${what} is over the ${KERAS_LIMITS.configBytes}-byte limit`);
  try {
    return JSON.parse(text);
  } catch (err) {
    invalid(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function configBytes(bytes: Uint8Array | undefined, what: string): unknown {
  if (bytes === undefined) invalid(`${what} is missing`);
  if (bytes.byteLength > KERAS_LIMITS.configBytes) invalid(`${what} is over the ${KERAS_LIMITS.configBytes}-byte limit`);
  return parseConfig(new TextDecoder().decode(bytes), what);
}

/** Keras layer weights as the tfjs layer takes them; Normalization becomes its stand-in's mean and variance. */
async function layerValues(file: H5File, layer: KerasLayer, sets: DatasetInfo[], channels: number): Promise<tf.Tensor[]> {
  // Normalization's third variable is an int64 count the stand-in does not need.
  const used = layer.kerasClass === 'Normalization' ? sets.slice(0, 2) : sets;
  const values = await Promise.all(
    used.map(async (d) => {
      const v = await readFloats(file, d);
      const bad = v.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) invalid(`weight ${d.path} holds a non-finite value (NaN or Infinity) at element ${bad}`);
      return { v, shape: d.shape };
    }),
  );
  if (layer.kerasClass !== 'Normalization') return values.map(({ v, shape }) => tf.tensor(v, shape));
  const cfg = layer.config;
  let mean: ArrayLike<number>;
  let variance: ArrayLike<number>;
  if (Array.isArray(cfg.mean) && Array.isArray(cfg.variance)) {
    mean = (cfg.mean as unknown[]).flat(8).map(Number);
    variance = (cfg.variance as unknown[]).flat(8).map(Number);
  } else if (typeof cfg.mean === 'number' && typeof cfg.variance === 'number') {
    mean = [cfg.mean];
    variance = [cfg.variance];
  } else {
    if (values.length < 2) invalid(`Normalization layer ${layer.name} has neither a mean/variance in its config nor adapted weights`);
    mean = values[0]!.v;
    variance = values[1]!.v;
  }
  const widen = (a: ArrayLike<number>) => (a.length === 1 ? new Float32Array(channels).fill(a[0]!) : Float32Array.from(a));
  const m = widen(mean);
  // Keras divides by max(sqrt(variance), 1e-7); the stand-in divides by sqrt(variance' + 0).
  const s = widen(variance).map((x) => Math.max(Math.sqrt(Math.max(x, 0)), 1e-7) ** 2);
  if (m.length !== channels || s.length !== channels)
    invalid(`Normalization layer ${layer.name} has ${m.length} means for ${channels} channels`);
  return [tf.tensor1d(m), tf.tensor1d(s)];
}

/** Builds the tfjs model from a converted config and fills each layer's weights from the HDF5 datasets. */
async function build(
  config: unknown,
  file: H5File,
  layout: 'legacy' | 'v3',
  what: string,
): Promise<{ model: tfl.LayersModel; located: Map<string, DatasetInfo> }> {
  const converted = convertKerasConfig(config);
  let model: tfl.LayersModel;
  try {
    model = await tfl.models.modelFromJSON({ modelTopology: converted.topology } as unknown as tf.io.ModelJSON);
  } catch (err) {
    invalid(`tfjs could not build the model from ${what}: ${(err as Error).message}`);
  }
  const sets = layerDatasets(file, converted.layers, layout);
  const located = new Map<string, DatasetInfo>();
  try {
    for (const layer of converted.layers) {
      const tl = model.getLayer(layer.name);
      if (tl.weights.length === 0) continue;
      const ds = sets.get(layer.name) ?? [];
      const channels = (tl.weights[0]!.shape.at(-1) as number | undefined) ?? 1;
      const values = await layerValues(file, layer, ds, channels);
      if (values.length !== tl.weights.length)
        invalid(`layer ${layer.name} has ${values.length} weight arrays in the file; ${tl.weights.length} expected`);
      values.forEach((t, i) => {
        const want = tl.weights[i]!.shape;
        if (t.shape.length !== want.length || t.shape.some((d, k) => d !== want[k])) {
          invalid(`weight ${i} of layer ${layer.name} has shape [${t.shape.join(', ')}]; the config implies [${want.join(', ')}]`);
        }
      });
      tl.setWeights(values);
      tf.dispose(values);
      if (layer.kerasClass !== 'Normalization') tl.weights.forEach((w, i) => located.set(w.originalName, ds[i]!));
    }
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { model, located };
}

/**
 * New HDF5 bytes with the changed float32 values written over the old ones: contiguous data in place,
 * compressed chunks re-encoded into their old space or, when larger, appended (the file is then rewritten).
 */
async function patchH5(
  bytes: Uint8Array,
  file: H5File,
  located: Map<string, DatasetInfo>,
  changed: ReadonlyMap<string, Float32Array>,
): Promise<Uint8Array> {
  let out: Uint8Array = bytes.slice();
  for (const [name, values] of changed) {
    const d = located.get(name);
    if (d === undefined) throw new ShapguardError('internal', `no dataset holds weight ${name}`);
    const runs = locateFloats(file, d);
    if (runs !== null) {
      const view = new DataView(out.buffer);
      for (const r of runs) for (let i = 0; i < r.count; i++) view.setFloat32(r.fileOffset + 4 * i, values[r.element + i]!, true);
      continue;
    }
    const rewritten = await rewriteFilteredFloats(file, d, values, out);
    if (rewritten === null) {
      throw new ShapguardError(
        'unsupported',
        `weight ${d.path} is stored with filters other than deflate/shuffle, or not as little-endian float32, or (in a version-2+ superblock file) re-compresses larger than its old space, so it cannot be written back`,
      );
    }
    out = rewritten;
  }
  return out;
}

/**
 * The loaded model whose write-back patches one HDF5 file (`h5`, at `h5Path` among the files, or inside
 * the archive at `entry` when `wrap` re-packs it) and copies every other file as it was.
 */
function keras(
  base: { model: tfl.LayersModel; format: LoadedModel['format']; entry: string; files: ReadonlyMap<string, Uint8Array> },
  h5: { bytes: Uint8Array; file: H5File; located: Map<string, DatasetInfo>; path: string },
  wrap: (patched: Uint8Array) => Promise<Uint8Array> = async (b) => b,
): LoadedModel {
  const weights: WritableWeight[] = [...h5.located].map(([name, d]) => ({ name, shape: d.shape }));
  return {
    ...base,
    weights,
    write: async (changed) => {
      const patched = await wrap(await patchH5(h5.bytes, h5.file, h5.located, changed));
      return new Map([...base.files].map(([p, b]) => [p, p === h5.path ? patched : b.slice()]));
    },
  };
}

/**
 * Loads a Keras model: a legacy HDF5 full model (.h5/.hdf5), a Keras 3 .keras archive, or the same three
 * files as a folder (entry "config.json" beside model.weights.h5). The repaired model comes back in the
 * same container with only the changed weight values different.
 */
export async function loadKerasModel(
  files: ReadonlyMap<string, Uint8Array>,
  entry: string,
  format: Exclude<ModelFormat, 'tfjs-layers' | 'onnx'>,
): Promise<LoadedModel> {
  const bytes = files.get(entry);
  if (bytes === undefined) invalid(`${entry} is missing`);
  if (bytes.byteLength > KERAS_LIMITS.fileBytes)
    invalid(`${entry} is ${bytes.byteLength} bytes, over the ${KERAS_LIMITS.fileBytes}-byte limit`);
  if (format === 'keras-h5') {
    const file = new H5File(bytes);
    const attrs = file.attributes(file.root);
    if (!attrs.has('model_config')) invalid(`${entry} has no model_config attribute: it holds weights only, or is not a Keras model file`);
    const { model, located } = await build(parseConfig(attrs.get('model_config'), `${entry}: model_config`), file, 'legacy', entry);
    return keras({ model, format, entry, files }, { bytes, file, located, path: entry });
  }
  if (format === 'keras-zip') {
    const entries = readZip(bytes);
    const find = (name: string) =>
      entries.find((e) => e.name === name) ?? invalid(`${entry} has no ${name} entry (not a Keras 3 .keras file)`);
    const weightsEntry = find(WEIGHTS_ENTRY);
    const config = configBytes(await readEntry(bytes, find('config.json')), `${entry}: config.json`);
    const h5 = await readEntry(bytes, weightsEntry);
    const file = new H5File(h5);
    const { model, located } = await build(config, file, 'v3', entry);
    return keras({ model, format, entry, files }, { bytes: h5, file, located, path: entry }, (patched) =>
      replaceEntry(bytes, entries, weightsEntry, patched),
    );
  }
  const dir = entry.includes('/') ? entry.slice(0, entry.lastIndexOf('/') + 1) : '';
  const weightsPath = `${dir}${WEIGHTS_ENTRY}`;
  const h5 = files.get(weightsPath) ?? invalid(`${weightsPath} is missing beside ${entry}`);
  if (h5.byteLength > KERAS_LIMITS.fileBytes) invalid(`${weightsPath} is over the ${KERAS_LIMITS.fileBytes}-byte limit`);
  const file = new H5File(h5);
  const { model, located } = await build(configBytes(bytes, entry), file, 'v3', entry);
  return keras({ model, format, entry, files }, { bytes: h5, file, located, path: weightsPath });
}
