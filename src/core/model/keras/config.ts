import { errorsIn, unsupported } from '../../errors.ts';
import { SUPPORTED_LAYERS } from '../layers.ts';

/** One layer of the model as built for tfjs, with what the weight reader needs to fill it. */
export interface KerasLayer {
  name: string;
  /** The class in the Keras file (Normalization is built as a BatchNormalization stand-in). */
  kerasClass: string;
  config: Record<string, unknown>;
}

export interface ConvertedConfig {
  /** A Keras-2-dialect topology that tfjs-layers deserialises. */
  topology: { class_name: 'Sequential' | 'Model'; config: Record<string, unknown> };
  layers: KerasLayer[];
}

type Json = Record<string, unknown>;

const ACTIVATIONS = new Map([
  ...[
    'elu',
    'hard_sigmoid',
    'linear',
    'relu',
    'relu6',
    'selu',
    'sigmoid',
    'softmax',
    'softplus',
    'softsign',
    'tanh',
    'swish',
    'mish',
    'gelu',
  ].map((a) => [a, a] as const),
  ['silu', 'swish'],
]);

const invalid: (message: string) => never = errorsIn('Keras config').invalid;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Keras 3 serialises activations as strings or as {class_name: "function", config: "relu"}. */
function activationName(v: unknown, layer: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  let name: unknown = v;
  if (isObject(v))
    name = typeof v.config === 'string' ? v.config : isObject(v.config) && typeof v.config.name === 'string' ? v.config.name : v.class_name;
  if (typeof name !== 'string') invalid(`layer ${layer} has an unreadable activation`);
  const mapped = ACTIVATIONS.get(name.toLowerCase());
  if (mapped === undefined) unsupported(`activation "${name}" of layer ${layer} is not supported`);
  return mapped;
}

/**
 * The layer's config with only what inference needs: initialisers, regularisers and constraints are
 * dropped (they can name custom classes and never affect a forward pass), dtype policies become
 * "float32", and Keras 3 spellings become the ones tfjs-layers reads.
 */
function cleanLayerConfig(cls: string, raw: Json): Json {
  const name = String(raw.name);
  const out: Json = {};
  for (const [k, v] of Object.entries(raw)) {
    if (/_(initializer|regularizer|constraint)$/.test(k)) continue;
    if (k === 'dtype') continue;
    out[k] = v;
  }
  out.dtype = 'float32';
  if ('activation' in raw) out.activation = activationName(raw.activation, name) ?? 'linear';
  if (raw.data_format === 'channels_first')
    unsupported(`layer ${name} uses data_format "channels_first"; only channels_last models are supported`);
  if (cls === 'Conv2D' && raw.groups !== undefined && raw.groups !== 1)
    unsupported(`layer ${name} is a grouped convolution (groups=${String(raw.groups)})`);
  if (cls === 'InputLayer') {
    const shape = raw.batch_shape ?? raw.batch_input_shape;
    if (!Array.isArray(shape)) invalid(`input layer ${name} has no batch shape`);
    delete out.batch_shape;
    out.batch_input_shape = shape;
  }
  if (cls === 'LeakyReLU') {
    out.alpha = raw.negative_slope ?? raw.alpha ?? 0.3;
    delete out.negative_slope;
  }
  if (cls === 'ReLU') {
    if ((raw.negative_slope ?? 0) !== 0 || (raw.threshold ?? 0) !== 0)
      unsupported(`layer ${name} is a ReLU with a negative slope or threshold`);
    out.max_value = raw.max_value ?? null;
    delete out.negative_slope;
    delete out.threshold;
  }
  if (cls === 'Softmax' && Array.isArray(raw.axis)) out.axis = raw.axis[0];
  return out;
}

/** Normalization (absent from tfjs-layers) as an equivalent BatchNormalization without scale or shift. */
function normalizationStandIn(raw: Json): Json {
  const name = String(raw.name);
  const axis = raw.axis;
  const last = axis === undefined || axis === null || axis === -1 || (Array.isArray(axis) && axis.length === 1 && axis[0] === -1);
  if (!last)
    unsupported(`Normalization layer ${name} normalises along axis ${JSON.stringify(axis)}; only the channel axis (-1) is supported`);
  if (raw.invert === true) unsupported(`Normalization layer ${name} has invert=true`);
  const out: Json = { name, axis: -1, epsilon: 0, center: false, scale: false, dtype: 'float32', trainable: false };
  if (raw.batch_input_shape !== undefined) out.batch_input_shape = raw.batch_input_shape;
  return out;
}

/** A layer entry of either dialect, checked and with its class resolved. */
function layerOf(entry: unknown): { cls: string; config: Json; entry: Json } {
  if (!isObject(entry) || typeof entry.class_name !== 'string' || !isObject(entry.config))
    invalid('a layer entry lacks class_name or config');
  const cls = entry.class_name;
  if (cls === 'Sequential' || cls === 'Functional' || cls === 'Model')
    unsupported(`nested model "${String(entry.config.name)}" (a model used as a layer) is not supported; flatten it before saving`);
  if (cls !== 'Normalization' && !SUPPORTED_LAYERS.has(cls))
    unsupported(`layer type "${cls}" is not supported (the scan never evaluates custom or Lambda layers)`);
  if (typeof entry.config.name !== 'string') invalid(`a ${cls} layer has no name`);
  return { cls, config: entry.config, entry };
}

/** Keras 3 inbound nodes ({args: [KerasTensor…]}) in the Keras 2 form ([[layer, node, tensor, {}], …]). */
function inboundNodes(nodes: unknown, layer: string): unknown[] {
  if (!Array.isArray(nodes)) return [];
  return nodes.map((node) => {
    if (Array.isArray(node)) return node;
    if (!isObject(node) || !Array.isArray(node.args)) invalid(`layer ${layer} has an unreadable inbound node`);
    const refs: unknown[] = [];
    const visit = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(visit);
      else if (isObject(v) && v.class_name === '__keras_tensor__' && isObject(v.config) && Array.isArray(v.config.keras_history)) {
        const [name, nodeIndex, tensorIndex] = v.config.keras_history as [string, number, number];
        refs.push([name, nodeIndex, tensorIndex, {}]);
      }
    };
    visit(node.args);
    return refs;
  });
}

function endpoints(v: unknown): unknown[] {
  if (!Array.isArray(v)) return [];
  return typeof v[0] === 'string' ? [v] : v;
}

/**
 * Converts a Keras model config (Keras 2 or Keras 3 dialect, Sequential or Functional) into the topology
 * tfjs-layers builds, refusing by name every layer the scan does not support. It never evaluates code:
 * Lambda and custom classes are rejected before anything is built.
 */
export function convertKerasConfig(modelConfig: unknown): ConvertedConfig {
  if (!isObject(modelConfig) || typeof modelConfig.class_name !== 'string') invalid('model_config is not a {class_name, config} object');
  const cls = modelConfig.class_name;
  const cfg = modelConfig.config;
  const layers: KerasLayer[] = [];
  if (cls === 'Sequential') {
    const entries = Array.isArray(cfg)
      ? cfg
      : isObject(cfg) && Array.isArray(cfg.layers)
        ? cfg.layers
        : invalid('Sequential config has no layers');
    const out: Json[] = [];
    let pendingShape: unknown = null;
    for (const e of entries) {
      const { cls: lc, config } = layerOf(e);
      if (lc === 'InputLayer') {
        pendingShape = cleanLayerConfig(lc, config).batch_input_shape;
        continue;
      }
      const clean = lc === 'Normalization' ? normalizationStandIn(config) : cleanLayerConfig(lc, config);
      if (pendingShape !== null) {
        clean.batch_input_shape = pendingShape;
        pendingShape = null;
      } else if (out.length === 0 && !('batch_input_shape' in clean)) {
        const build = isObject(e) && isObject(e.build_config) ? e.build_config.input_shape : undefined;
        if (!Array.isArray(build)) invalid('the first layer of the Sequential model has no input shape');
        clean.batch_input_shape = build;
      }
      out.push({ class_name: lc === 'Normalization' ? 'BatchNormalization' : lc, config: clean });
      layers.push({ name: String(config.name), kerasClass: lc, config });
    }
    const name = isObject(cfg) && typeof cfg.name === 'string' ? cfg.name : 'sequential';
    return { topology: { class_name: 'Sequential', config: { name, layers: out } }, layers };
  }
  if (cls === 'Functional' || cls === 'Model') {
    if (!isObject(cfg) || !Array.isArray(cfg.layers)) invalid('Functional config has no layers');
    const out: Json[] = [];
    for (const e of cfg.layers) {
      const { cls: lc, config, entry } = layerOf(e);
      const clean = lc === 'Normalization' ? normalizationStandIn(config) : cleanLayerConfig(lc, config);
      const name = String(config.name);
      out.push({
        class_name: lc === 'Normalization' ? 'BatchNormalization' : lc,
        config: clean,
        name,
        inbound_nodes: inboundNodes(entry.inbound_nodes, name),
      });
      layers.push({ name, kerasClass: lc, config });
    }
    const topology = {
      name: typeof cfg.name === 'string' ? cfg.name : 'model',
      layers: out,
      input_layers: endpoints(cfg.input_layers),
      output_layers: endpoints(cfg.output_layers),
    };
    return { topology: { class_name: 'Model', config: topology }, layers };
  }
  unsupported(`model class "${cls}" is not supported (Sequential and Functional models are)`);
}
