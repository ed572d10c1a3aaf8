import { invalid } from '../../errors.ts';
import type { DatasetInfo, H5File } from '../hdf5/file.ts';
import type { KerasLayer } from './config.ts';

/**
 * A legacy-HDF5 string-list attribute. Keras splits lists that overflow HDF5's 64 KiB header limit into
 * numbered chunks (layer_names0, layer_names1, …), so both spellings are read.
 */
function stringList(attrs: Map<string, unknown>, name: string): string[] | undefined {
  const whole = attrs.get(name);
  let values: unknown[] | undefined;
  if (whole !== undefined) values = Array.isArray(whole) ? whole : [whole];
  else if (attrs.has(`${name}0`)) {
    values = [];
    for (let i = 0; attrs.has(`${name}${i}`); i++) values.push(...(attrs.get(`${name}${i}`) as unknown[]));
  }
  if (values === undefined) return undefined;
  return values.map((v) => (typeof v === 'string' ? v : invalid(`attribute ${name} holds a non-string`)));
}

/**
 * The weight datasets of each layer, in Keras order, from a legacy full-model file (model_weights/
 * <layer>/<weight_names…>) or from a Keras 3 weights file (layers/<layer>/vars/0, 1, …).
 */
export function layerDatasets(file: H5File, layers: KerasLayer[], layout: 'legacy' | 'v3'): Map<string, DatasetInfo[]> {
  const out = new Map<string, DatasetInfo[]>();
  if (layout === 'legacy') {
    const group = file.has('model_weights') ? 'model_weights' : '';
    const attrs = file.attributes(file.open(group));
    const names = stringList(attrs, 'layer_names');
    if (names === undefined) invalid(`the HDF5 file has no ${group || 'root'} layer_names attribute (not a Keras model file)`);
    for (const layer of layers) {
      if (!names.includes(layer.name)) {
        out.set(layer.name, []);
        continue;
      }
      const lg = `${group}/${layer.name}`;
      const weightNames = stringList(file.attributes(file.open(lg)), 'weight_names') ?? [];
      out.set(
        layer.name,
        weightNames.map((w) => file.dataset(file.open(`${lg}/${w}`))),
      );
    }
    return out;
  }
  const byVarsName = new Map<string, string>();
  if (file.has('layers')) {
    for (const key of file.children(file.open('layers')).keys()) {
      const vars = `layers/${key}/vars`;
      if (!file.has(vars)) continue;
      const n = file.attributes(file.open(vars)).get('name');
      if (typeof n === 'string') byVarsName.set(n, vars);
    }
  }
  for (const layer of layers) {
    const path = file.has(`layers/${layer.name}/vars`) ? `layers/${layer.name}/vars` : byVarsName.get(layer.name);
    if (path === undefined) {
      out.set(layer.name, []);
      continue;
    }
    const vars = [...file.children(file.open(path)).keys()].filter((k) => /^\d+$/.test(k)).sort((a, b) => Number(a) - Number(b));
    out.set(
      layer.name,
      vars.map((v) => file.dataset(file.open(`${path}/${v}`))),
    );
  }
  return out;
}
