import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { invalid, ShapguardError } from '../errors.ts';
import { SUPPORTED_LAYERS } from './layers.ts';
import type { LoadedModel } from './loaded-model.ts';

/** Hard caps that keep a hostile model.json from costing more than a scan is allowed to. */
export const IO_LIMITS = {
  modelJsonBytes: 8 * 1024 * 1024,
  weightBytes: 64 * 1024 * 1024,
  shards: 256,
};

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: unknown;
}

interface ModelJson {
  format?: string;
  modelTopology: { class_name?: string; config?: unknown; model_config?: unknown };
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
}

/** Where one weight's float32 values lie among the shards. */
export interface WeightLocation {
  name: string;
  shape: number[];
  /** Byte offset in the concatenation of all shards, in manifest order. */
  offset: number;
  bytes: number;
}

export interface TfjsLoadedModel extends LoadedModel {
  format: 'tfjs-layers';
  /** Shard paths in manifest order, with their sizes. */
  shards: { path: string; bytes: number }[];
  weights: WeightLocation[];
}

function parseJson(bytes: Uint8Array, entry: string): ModelJson {
  if (bytes.byteLength > IO_LIMITS.modelJsonBytes)
    invalid(`${entry} is ${bytes.byteLength} bytes, over the ${IO_LIMITS.modelJsonBytes}-byte limit`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    invalid(`${entry} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null) invalid(`${entry} is not a JSON object`);
  const j = json as Partial<ModelJson>;
  if (j.format !== undefined && j.format !== 'layers-model') {
    throw new ShapguardError(
      'unsupported',
      `${entry} has format "${String(j.format)}"; only TensorFlow.js layers models ("layers-model") are supported`,
    );
  }
  if (typeof j.modelTopology !== 'object' || j.modelTopology === null) invalid(`${entry} has no modelTopology object`);
  if (!Array.isArray(j.weightsManifest)) invalid(`${entry} has no weightsManifest array`);
  for (const [g, group] of j.weightsManifest.entries()) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group.weights))
      invalid(`${entry}: weightsManifest[${g}] needs "paths" and "weights" arrays`);
    for (const p of group.paths) if (typeof p !== 'string') invalid(`${entry}: weightsManifest[${g}].paths holds a non-string`);
    for (const w of group.weights) {
      if (typeof w?.name !== 'string' || !Array.isArray(w.shape) || typeof w.dtype !== 'string') {
        invalid(`${entry}: weightsManifest[${g}] has a weight without name, shape and dtype`);
      }
      if (!w.shape.every((d) => Number.isInteger(d) && d >= 0))
        invalid(`${entry}: weight ${w.name} has an invalid shape ${JSON.stringify(w.shape)}`);
    }
  }
  return j as ModelJson;
}

/**
 * The weight files a model.json's manifest names (the first `limit` of them), resolved relative to the
 * entry's folder, so a reader (disk, bucket) can fetch them before loading. Unparsable JSON and bad paths
 * give nothing here: loading the model reports them precisely.
 */
export function shardPaths(entry: string, json: Uint8Array, limit = Infinity): string[] {
  let paths: string[];
  try {
    const parsed = JSON.parse(new TextDecoder().decode(json)) as { weightsManifest?: { paths?: unknown }[] };
    paths = (parsed.weightsManifest ?? []).flatMap((g) =>
      Array.isArray(g?.paths) ? g.paths.filter((p): p is string => typeof p === 'string') : [],
    );
  } catch {
    return [];
  }
  return paths.slice(0, limit).flatMap((p) => {
    try {
      return [resolveRelative(entry, p)];
    } catch {
      return [];
    }
  });
}

/** Normalises a shard path relative to the folder of the entry, refusing anything that escapes it. */
export function resolveRelative(entry: string, path: string): string {
  if (path.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(path) || path.includes('\\'))
    invalid(`weight path "${path}" must be relative to ${entry}`);
  const base = entry.includes('/') ? entry.slice(0, entry.lastIndexOf('/') + 1) : '';
  const parts: string[] = [];
  for (const part of (base + path).split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') invalid(`weight path "${path}" leaves the model's folder`);
    parts.push(part);
  }
  return parts.join('/');
}

function layerClassNames(topology: unknown): string[] {
  const names: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const o = node as { class_name?: unknown; config?: { layers?: unknown } };
    if (typeof o.class_name === 'string') names.push(o.class_name);
    if (o.config && typeof o.config === 'object') visit(o.config.layers);
  };
  const t = topology as { model_config?: unknown };
  visit(t.model_config ?? topology);
  return names;
}

/**
 * Reads a TensorFlow.js layers model from its files (model.json and shards), validating everything a
 * hostile or broken upload could get wrong before tfjs sees it, so the failure is a precise message.
 */
export async function loadTfjsModel(files: ReadonlyMap<string, Uint8Array>, entry = 'model.json'): Promise<TfjsLoadedModel> {
  const jsonBytes = files.get(entry);
  if (jsonBytes === undefined) invalid(`${entry} is missing`);
  const json = parseJson(jsonBytes, entry);

  for (const cls of layerClassNames(json.modelTopology)) {
    if (cls === 'Sequential' || cls === 'Model' || cls === 'Functional') continue;
    if (!SUPPORTED_LAYERS.has(cls))
      throw new ShapguardError('unsupported', `layer type "${cls}" is not supported (the scan never evaluates custom or Lambda layers)`);
  }

  const shards: { path: string; bytes: number }[] = [];
  const specs: WeightSpec[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const path = resolveRelative(entry, p);
      const data = files.get(path);
      if (data === undefined) invalid(`weight shard "${path}" named in ${entry} is missing`);
      shards.push({ path, bytes: data.byteLength });
    }
    specs.push(...group.weights);
  }
  if (shards.length > IO_LIMITS.shards) invalid(`${entry} names ${shards.length} shards, over the limit of ${IO_LIMITS.shards}`);

  const weights: WeightLocation[] = [];
  let offset = 0;
  for (const w of specs) {
    if (w.quantization !== undefined)
      throw new ShapguardError('unsupported', `weight ${w.name} is quantized; only float32 weights are supported`);
    if (w.dtype !== 'float32')
      throw new ShapguardError('unsupported', `weight ${w.name} has dtype ${w.dtype}; only float32 weights are supported`);
    const bytes = 4 * w.shape.reduce((a, b) => a * b, 1);
    weights.push({ name: w.name, shape: w.shape, offset, bytes });
    offset += bytes;
    if (offset > IO_LIMITS.weightBytes) invalid(`${entry} declares more than ${IO_LIMITS.weightBytes} bytes of weights`);
  }
  const total = shards.reduce((a, s) => a + s.bytes, 0);
  if (total !== offset) invalid(`the shards hold ${total} bytes but ${entry} declares ${offset} bytes of weights`);

  const data = new Uint8Array(total);
  let at = 0;
  for (const s of shards) {
    data.set(files.get(s.path)!, at);
    at += s.bytes;
  }
  const floats = new Float32Array(data.buffer, data.byteOffset, total / 4);
  for (const w of weights) {
    const start = w.offset / 4;
    for (let i = start; i < start + w.bytes / 4; i++) {
      if (!Number.isFinite(floats[i]!)) invalid(`weight ${w.name} holds a non-finite value (NaN or Infinity) at element ${i - start}`);
    }
  }

  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
        weightSpecs: specs as tf.io.WeightsManifestEntry[],
        weightData: data.buffer,
      }),
    );
  } catch (err) {
    const msg = (err as Error).message;
    const unknown = /Unknown layer: (\w+)/.exec(msg);
    if (unknown) throw new ShapguardError('unsupported', `layer type "${unknown[1]}" is not supported`);
    invalid(`tfjs could not build the model from ${entry}: ${msg}`);
  }
  const loaded: TfjsLoadedModel = {
    model,
    format: 'tfjs-layers',
    entry,
    files,
    shards,
    weights,
    write: async (changed) => writeTfjsModel(loaded, changed),
  };
  return loaded;
}

/**
 * The model's files with new values for some weights, overwritten in place: model.json and every byte
 * not belonging to a changed weight stay identical, so only the pruned values differ.
 */
export function writeTfjsModel(loaded: TfjsLoadedModel, changed: ReadonlyMap<string, Float32Array>): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [path, bytes] of loaded.files) out.set(path, bytes.slice());
  for (const [name, values] of changed) {
    const loc = loaded.weights.find((w) => w.name === name);
    if (loc === undefined) throw new ShapguardError('internal', `no weight named ${name} in the manifest`);
    if (values.length * 4 !== loc.bytes) throw new ShapguardError('internal', `new values of ${name} have the wrong size`);
    const src = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    let shardStart = 0;
    for (const s of loaded.shards) {
      const from = Math.max(loc.offset, shardStart);
      const to = Math.min(loc.offset + loc.bytes, shardStart + s.bytes);
      if (from < to) out.get(s.path)!.set(src.subarray(from - loc.offset, to - loc.offset), from - shardStart);
      shardStart += s.bytes;
    }
  }
  return out;
}
