import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { clearField, create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapguardError } from '../../src/core/errors.ts';
import { loadModel } from '../../src/core/model/load.ts';
import type { LoadedModel } from '../../src/core/model/loaded-model.ts';
import { ONNX_LIMITS } from '../../src/core/model/onnx/decode.ts';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TrainingInfoProtoSchema,
  FunctionProtoSchema,
  type ModelProto,
} from '../../src/core/model/onnx/onnx_pb.ts';
import { prunedWeights } from '../../src/core/model/prune-weights.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { loadMnist, type ImageSet } from '../data/mnist.ts';
import { accuracy, attackSuccessRate } from '../data/evaluate.ts';
import { onnxCheck, runOnnx } from '../helpers/onnx.ts';
import type { OnnxManifestEntry } from '../../tools/fixtures/build-onnx.ts';
import { fixtureTest, inputShape, OPS_SHAPE, probeImage } from '../../tools/fixtures/build-onnx.ts';
import { loadModelFromDisk } from '../data/load-dir.ts';

const ONNX = resolve('test/fixtures/onnx');
const fixtures = JSON.parse(readFileSync(join(ONNX, 'manifest.json'), 'utf8')) as OnnxManifestEntry[];
const byName = (name: string) => fixtures.find((f) => f.name === name)!;
const bytesOf = (name: string) => new Uint8Array(readFileSync(join(ONNX, `${name}.onnx`)));
const shapeOf = inputShape;
/** Real test images of a fixture's dataset (the first `n`). */
const testSets = new Map<string, ImageSet>();
const testSet = (f: OnnxManifestEntry): ImageSet => {
  if (!testSets.has(f.dataset!)) testSets.set(f.dataset!, fixtureTest(f));
  return testSets.get(f.dataset!)!;
};
const testImages = (f: OnnxManifestEntry, n: number) => {
  const t = testSet(f);
  return t.images.subarray(0, n * t.shape[0] * t.shape[1] * t.shape[2]);
};

async function load(bytes: Uint8Array, entry = 'model.onnx'): Promise<LoadedModel> {
  return loadModel(new Map([[entry, bytes]]), entry);
}

function predict(model: tfl.LayersModel, images: Float32Array, shape: [number, number, number]): Float32Array {
  return tf
    .tidy(
      () =>
        (
          model.predict(tf.tensor4d(images, [images.length / (shape[0] * shape[1] * shape[2]), ...shape])) as tf.Tensor
        ).dataSync() as Float32Array,
    )
    .slice();
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Deterministic images in [0, 1] for the untrained ops fixtures. */
function pseudoImages(n: number, shape: [number, number, number], seed: number): Float32Array {
  return Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37 + seed));
}

/** A fixture's decoded proto, changed by `edit`, encoded again: the hostile and near-miss files. */
function edited(name: string, edit: (m: ModelProto) => void): Uint8Array {
  const m = fromBinary(ModelProtoSchema, bytesOf(name));
  edit(m);
  return toBinary(ModelProtoSchema, m);
}

async function refusal(bytes: Uint8Array): Promise<ShapguardError> {
  const copy = bytes.slice();
  const err = await load(bytes).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ShapguardError);
  // The original is never modified, whatever the loader made of it.
  expect(Buffer.from(bytes).equals(Buffer.from(copy))).toBe(true);
  return err as ShapguardError;
}

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

describe('ONNX models exported by PyTorch (torch.onnx, opsets 13 and 17, with and without constant folding)', () => {
  it.each(fixtures.map((f) => f.name))('forward outputs match onnxruntime to 1e-4: %s', async (name) => {
    const f = byName(name);
    const shape = shapeOf(f);
    const images = f.dataset === null ? pseudoImages(64, shape, 1) : testImages(f, 500);
    const loaded = await load(bytesOf(name));
    const ours = predict(loaded.model, images, shape);
    const oracle = await runOnnx(bytesOf(name), images, shape);
    expect(maxAbsDiff(ours, oracle)).toBeLessThan(1e-4);
    // The ops fixtures exercise every mapped op; the tfjs model shows which layers they became.
    if (f.dataset === null) {
      expect(loaded.model.layers.map((l) => l.getClassName())).toEqual(
        expect.arrayContaining([
          'Rescaling',
          'DepthwiseConv2D',
          'ZeroPadding2D',
          'AveragePooling2D',
          'Concatenate',
          'BatchNormalization',
          'Add',
          'Softmax',
        ]),
      );
    }
  });

  /** tfjs's input gradient of Σ_k cos(k + 1)·output_k at the fixture's probe image. */
  async function ourGradient(name: string): Promise<{ image: Float32Array; grad: Float32Array; classes: number }> {
    const f = byName(name);
    const shape = shapeOf(f);
    const image = probeImage(f, f.dataset === null ? null : testSet(f));
    const loaded = await load(bytesOf(name));
    const classes = loaded.model.outputs[0]!.shape[1]!;
    const grad = tf.tidy(() => {
      const weights = tf.tensor1d(Float32Array.from({ length: classes }, (_, k) => Math.cos(k + 1)));
      return tf
        .grad((x: tf.Tensor) => tf.sum(tf.mul(loaded.model.apply(x) as tf.Tensor, weights)))(tf.tensor4d(image, [1, ...shape]))
        .dataSync()
        .slice();
    }) as Float32Array;
    return { image, grad, classes };
  }

  it.each(fixtures.map((f) => f.name))("input gradients match PyTorch's autograd at the probe image: %s", async (name) => {
    const { grad } = await ourGradient(name);
    const reference = JSON.parse(readFileSync(join(ONNX, byName(name).gradient), 'utf8')) as number[];
    const scale = Math.max(...reference.map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    expect(maxAbsDiff(grad, Float32Array.from(reference))).toBeLessThan(1e-3 * scale);
  });

  it.each(fixtures.filter((f) => f.dataset !== null).map((f) => f.name))(
    'input gradients match central differences through onnxruntime: %s',
    async (name) => {
      // The untrained ops fixtures are left to the autograd check: a net of random ReLUs has a kink within
      // any finite step, so differences there measure the kinks, not the gradient.
      const { image, grad, classes } = await ourGradient(name);
      const shape = shapeOf(byName(name));
      const px = image.length;
      const h = 1e-3;
      const pixels = Array.from({ length: 24 }, (_, i) => (i * 7919) % px);
      const probes = new Float32Array(pixels.length * 2 * px);
      pixels.forEach((p, i) => {
        for (const [j, sign] of [
          [0, 1],
          [1, -1],
        ] as const) {
          const row = image.slice();
          row[p] = row[p]! + sign * h;
          probes.set(row, (2 * i + j) * px);
        }
      });
      const out = await runOnnx(bytesOf(name), probes, shape);
      const score = (r: number) =>
        Array.from({ length: classes }, (_, k) => out[r * classes + k]! * Math.cos(k + 1)).reduce((a, b) => a + b, 0);
      const errors = pixels.map((p, i) => Math.abs((score(2 * i) - score(2 * i + 1)) / (2 * h) - grad[p]!)).sort((a, b) => a - b);
      const scale = Math.max(...pixels.map((p) => Math.abs(grad[p]!)));
      expect(scale).toBeGreaterThan(0);
      // A probe whose ±h step crosses a kink (a ReLU, a max-pool window's near-tie) differs for a reason of its
      // own: most, not all, must agree; the autograd check above is the exact one.
      expect(errors[Math.floor(errors.length / 2)]!).toBeLessThan(0.01 * scale);
      expect(errors.filter((e) => e < 0.02 * scale).length).toBeGreaterThanOrEqual(Math.ceil(0.75 * errors.length));
    },
  );

  it.each(fixtures.filter((f) => f.accuracy !== null).map((f) => f.name))(
    "the loaded model reproduces PyTorch's own accuracy and attack success on the real test set: %s",
    async (name) => {
      const f = byName(name);
      const test = testSet(f);
      const loaded = await load(bytesOf(name));
      expect(Math.abs(accuracy(loaded.model, test) - f.accuracy!)).toBeLessThanOrEqual(0.0005);
      if (f.attack !== null)
        expect(Math.abs(attackSuccessRate(loaded.model, test, f.attack.trigger, f.attack.target) - f.asr!)).toBeLessThanOrEqual(0.0005);
    },
  );

  it.each(fixtures.filter((f) => f.twin).map((f) => f.name))(
    'the tfjs twin (weights transposed by numpy, not by the loader) computes the same function: %s',
    async (name) => {
      const loaded = await load(bytesOf(name));
      const twin = await loadModelFromDisk(join(ONNX, `${name}-twin`, 'model.json'));
      const f = byName(name);
      const images = testImages(f, 500);
      expect(maxAbsDiff(predict(loaded.model, images, shapeOf(f)), predict(twin, images, shapeOf(f)))).toBeLessThan(1e-4);
      expect(loaded.model.layers.map((l) => l.getClassName()).filter((c) => c === 'Conv2D' || c === 'Dense')).toEqual(
        twin.layers.map((l) => l.getClassName()).filter((c) => c === 'Conv2D' || c === 'Dense'),
      );
    },
  );
});

describe('writing a repaired ONNX model back', () => {
  const name = 'mnist-badnets-o13';
  const images = loadMnist('test', 300).images;

  /** The last conv's channels 3 and 7, and fc1's input position (1, 2) of its 5×5×32 grid. */
  async function pruneAndWrite(bytes: Uint8Array) {
    const loaded = await load(bytes, 'm.onnx');
    const convs = loaded.model.layers.filter((l) => l.getClassName() === 'Conv2D');
    const dense = loaded.model.layers.filter((l) => l.getClassName() === 'Dense');
    const conv = convs.at(-1)!.name;
    const fc1 = dense[0]!.name;
    const changed = prunedWeights(
      loaded,
      loaded.model,
      [
        { layer: conv, channel: 3, position: null },
        { layer: conv, channel: 7, position: null },
        { layer: fc1, channel: null, position: [1, 2] },
      ],
      new Map([[fc1, [5, 5, 32]]]),
    );
    const out = (await loaded.write(changed)).get('m.onnx')!;
    // The tfjs model with the same pruned weights: what the written file must compute.
    for (const layer of loaded.model.layers) {
      const ws = layer.weights.map((w) => {
        const v = changed.get(w.originalName);
        return v === undefined ? w.read() : tf.tensor(v, w.shape as number[]);
      });
      if (ws.length > 0) layer.setWeights(ws);
    }
    return { loaded, out };
  }

  it('changes only the pruned values, in place, and onnxruntime and onnx.checker agree with the pruned model', async () => {
    const bytes = bytesOf(name);
    const original = bytes.slice();
    const { loaded, out } = await pruneAndWrite(bytes);
    expect(Buffer.from(bytes).equals(Buffer.from(original))).toBe(true);
    expect(out.length).toBe(bytes.length);
    // Every differing byte lies in the raw_data of conv2.weight, conv2.bias or fc1.weight.
    const proto = fromBinary(ModelProtoSchema, bytes);
    const spans = proto
      .graph!.initializer.filter((t) => ['conv2.weight', 'conv2.bias', 'fc1.weight'].includes(t.name))
      .map((t) => [t.rawData.byteOffset, t.rawData.byteOffset + t.rawData.byteLength] as const);
    expect(spans).toHaveLength(3);
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== out[i]) expect(spans.some(([a, b]) => i >= a && i < b)).toBe(true);
    // In ONNX's own layout: filters 3 and 7 of conv2 zero; fc1 reads channels first, so position (1, 2) is column c·25 + 7.
    const written = fromBinary(ModelProtoSchema, out).graph!.initializer;
    const floats = (n: string) => {
      const t = written.find((x) => x.name === n)!;
      return new Float32Array(t.rawData.slice().buffer);
    };
    const w2 = floats('conv2.weight');
    const per = 16 * 9;
    for (const o of [3, 7]) expect(w2.subarray(o * per, (o + 1) * per).every((v) => v === 0)).toBe(true);
    expect(w2.subarray(4 * per, 5 * per).some((v) => v !== 0)).toBe(true);
    expect([3, 7].map((o) => floats('conv2.bias')[o])).toEqual([0, 0]);
    const fc1 = floats('fc1.weight');
    for (let u = 0; u < 64; u++) for (let c = 0; c < 32; c++) expect(fc1[u * 800 + c * 25 + 7]).toBe(0);
    expect(fc1.some((v, i) => i % 800 === 8 && v !== 0)).toBe(true);
    // onnxruntime runs the written file as the pruned tfjs model computes.
    const ours = predict(loaded.model, images, [28, 28, 1]);
    expect(maxAbsDiff(await runOnnx(out, images, [28, 28, 1]), ours)).toBeLessThan(1e-4);
    const dir = mkdtempSync(join(tmpdir(), 'shapguard-onnx-'));
    writeFileSync(join(dir, 'repaired.onnx'), out);
    const check = onnxCheck(join(ONNX, `${name}.onnx`), join(dir, 'repaired.onnx'));
    expect(check.checker).toBeNull();
    expect(check.structure).toEqual([]);
    expect(check.changed).toEqual({ 'conv2.weight': 2 * per, 'conv2.bias': 2, 'fc1.weight': 32 * 64 });
  });

  it('a weight stored as float_data is re-encoded by the protobuf library, everything else as it was', async () => {
    const bytes = edited(name, (m) => {
      const t = m.graph!.initializer.find((x) => x.name === 'conv2.weight')!;
      t.floatData = Array.from(new Float32Array(t.rawData.slice().buffer));
      clearField(t, TensorProtoSchema.field.rawData);
    });
    const { loaded, out } = await pruneAndWrite(bytes);
    const dir = mkdtempSync(join(tmpdir(), 'shapguard-onnx-'));
    writeFileSync(join(dir, 'in.onnx'), bytes);
    writeFileSync(join(dir, 'out.onnx'), out);
    const check = onnxCheck(join(dir, 'in.onnx'), join(dir, 'out.onnx'));
    expect(check.checker).toBeNull();
    expect(check.structure).toEqual([]);
    expect(check.changed).toEqual({ 'conv2.weight': 2 * 16 * 9, 'conv2.bias': 2, 'fc1.weight': 32 * 64 });
    expect(fromBinary(ModelProtoSchema, out).graph!.initializer.find((x) => x.name === 'conv2.weight')!.floatData.length).toBe(32 * 16 * 9);
    expect(maxAbsDiff(await runOnnx(out, images, [28, 28, 1]), predict(loaded.model, images, [28, 28, 1]))).toBeLessThan(1e-4);
  });
});

describe('writing back a dilated convolution (translated into a kernel with zeros between its taps)', () => {
  it('changes exactly the pruned filter in ONNX layout, and onnxruntime agrees with the pruned model', async () => {
    const bytes = bytesOf('ops-o13');
    const loaded = await load(bytes, 'm.onnx');
    const dilated = loaded.model.layers.find((l) => l.getClassName() === 'Conv2D' && (l.getConfig().kernelSize as number[])[0] === 5)!;
    const changed = prunedWeights(loaded, loaded.model, [{ layer: dilated.name, channel: 2, position: null }]);
    const out = (await loaded.write(changed)).get('m.onnx')!;
    for (const [name, v] of changed) {
      const w = loaded.model.weights.find((x) => x.originalName === name)!;
      const layer = loaded.model.layers.find((l) => l.weights.includes(w))!;
      layer.setWeights(layer.weights.map((x) => (x === w ? tf.tensor(v, x.shape as number[]) : x.read())));
    }
    const images = pseudoImages(16, OPS_SHAPE, 4);
    expect(maxAbsDiff(await runOnnx(out, images, OPS_SHAPE), predict(loaded.model, images, OPS_SHAPE))).toBeLessThan(1e-4);
    const dir = mkdtempSync(join(tmpdir(), 'shapguard-onnx-'));
    writeFileSync(join(dir, 'out.onnx'), out);
    const check = onnxCheck(join(ONNX, 'ops-o13.onnx'), join(dir, 'out.onnx'));
    expect(check.checker).toBeNull();
    expect(check.structure).toEqual([]);
    // Filter 2 of the 8→8 3×3 kernel: its 8·9 weights and its bias, nothing else.
    expect(check.changed).toEqual({ 'c1b.weight': 72, 'c1b.bias': 1 });
  });
});

describe('hostile and unsupported ONNX files: a precise refusal, the input untouched', () => {
  const base = 'mnist-badnets-o13';

  /** A graph attribute nested `depth` times (If/Loop bodies are how subgraphs reach a model). */
  function nestedGraphs(depth: number): Uint8Array {
    return edited(base, (m) => {
      let graph = create(GraphProtoSchema, { name: 'leaf' });
      for (let i = 0; i < depth; i++) {
        const node = create(NodeProtoSchema, {
          opType: 'If',
          output: [`o${i}`],
          attribute: [create(AttributeProtoSchema, { name: 'then_branch', type: AttributeProto_AttributeType.GRAPH, g: graph })],
        });
        graph = create(GraphProtoSchema, { name: `g${i}`, node: [node] });
      }
      m.graph!.node.push(...graph.node);
    });
  }

  it.each([
    ['a truncated file', () => bytesOf(base).slice(0, 5000), 'input', /not a valid ONNX protobuf/],
    ['bytes that are not protobuf', () => new Uint8Array(4096).fill(0xff), 'input', /not a valid ONNX protobuf/],
    ['messages nested past the cap', () => nestedGraphs(ONNX_LIMITS.depth), 'input', /nest deeper than 24/],
    ['a subgraph within the nesting cap', () => nestedGraphs(2), 'unsupported', /If\) has a subgraph/],
    [
      'dims that need more data than the tensor holds',
      () => edited(base, (m) => void (m.graph!.initializer.find((t) => t.name === 'conv2.weight')!.dims = [32n, 16n, 3n, 4n])),
      'input',
      /tensor "conv2.weight": dims \[32, 16, 3, 4\] need 24576 bytes of raw_data, it has 18432/,
    ],
    [
      'dims whose product is astronomically large',
      () => edited(base, (m) => void (m.graph!.initializer[0]!.dims = [1n << 31n, 1n << 31n])),
      'input',
      /over the 67108864-element limit/,
    ],
    [
      'an initializer in an external data file',
      () =>
        edited(base, (m) => {
          const t = m.graph!.initializer[0]!;
          t.dataLocation = TensorProto_DataLocation.EXTERNAL;
          t.externalData = [create(StringStringEntryProtoSchema, { key: 'location', value: '../../etc/passwd' })];
        }),
      'unsupported',
      /external data file/,
    ],
    [
      'a float16 weight',
      () => edited(base, (m) => void (m.graph!.initializer.find((t) => t.name === 'fc2.bias')!.dataType = TensorProto_DataType.FLOAT16)),
      'unsupported',
      /tensor "fc2.bias" has data type FLOAT16/,
    ],
    [
      'a node of a custom domain',
      () => edited(base, (m) => void (m.graph!.node.find((n) => n.opType === 'Relu')!.domain = 'com.example')),
      'unsupported',
      /custom domain "com.example"/,
    ],
    [
      'a grouped convolution that is neither plain nor depthwise',
      () =>
        edited(base, (m) => {
          const node = m.graph!.node.find((n) => n.opType === 'Conv' && n.input[1] === 'conv2.weight')!;
          node.attribute.push(create(AttributeProtoSchema, { name: 'group', type: AttributeProto_AttributeType.INT, i: 2n }));
          const t = m.graph!.initializer.find((x) => x.name === 'conv2.weight')!;
          t.dims = [32n, 8n, 3n, 3n];
          t.rawData = t.rawData.slice(0, t.rawData.byteLength / 2);
        }),
      'unsupported',
      /Conv\) with 2 groups over 16 channels/,
    ],
    [
      'an op the converter does not map',
      () => edited(base, (m) => void (m.graph!.node.find((n) => n.opType === 'Relu')!.opType = 'Elu')),
      'unsupported',
      /op Elu is not supported/,
    ],
    ['opset 9', () => edited(base, (m) => void (m.opsetImport[0]!.version = 9n)), 'unsupported', /uses opset 9; opsets 11–21/],
    [
      'a training graph',
      () => edited(base, (m) => void m.trainingInfo.push(create(TrainingInfoProtoSchema, {}))),
      'unsupported',
      /training graph/,
    ],
    [
      'model-local functions',
      () => edited(base, (m) => void m.functions.push(create(FunctionProtoSchema, { name: 'f' }))),
      'unsupported',
      /model-local functions \(f\)/,
    ],
    [
      'two inputs',
      () => edited(base, (m) => void m.graph!.input.push({ ...m.graph!.input[0]!, name: 'second' })),
      'unsupported',
      /2 inputs and 1 outputs/,
    ],
    [
      'more nodes than the cap',
      () =>
        edited(base, (m) => {
          const out = m.graph!.output[0]!.name;
          const last = m.graph!.node.at(-1)!;
          last.output = ['chain0'];
          for (let i = 0; i < ONNX_LIMITS.nodes; i++)
            m.graph!.node.push(
              create(NodeProtoSchema, {
                opType: 'Identity',
                input: [`chain${i}`],
                output: [i === ONNX_LIMITS.nodes - 1 ? out : `chain${i + 1}`],
              }),
            );
        }),
      'input',
      /over the 20000-node limit/,
    ],
  ] as const)('%s', async (_what, make, kind, message) => {
    const err = await refusal(make());
    expect(err.kind).toBe(kind);
    expect(err.message).toMatch(message);
    expect(err.message).not.toMatch(/\n\s+at /);
  });

  it('near misses still load and compute the same: opset 12, a chain of Identity nodes, a graph named oddly', async () => {
    const reference = predict((await load(bytesOf(base))).model, loadMnist('test', 50).images, [28, 28, 1]);
    const variants = [
      edited(base, (m) => void (m.opsetImport[0]!.version = 12n)),
      edited(base, (m) => {
        const out = m.graph!.output[0]!.name;
        m.graph!.node.at(-1)!.output = ['chain0'];
        for (let i = 0; i < 100; i++)
          m.graph!.node.push(
            create(NodeProtoSchema, { opType: 'Identity', input: [`chain${i}`], output: [i === 99 ? out : `chain${i + 1}`] }),
          );
      }),
      edited(base, (m) => {
        m.graph!.name = '../../weird/name';
        for (const n of m.graph!.node) n.name = '';
      }),
    ];
    for (const bytes of variants)
      expect(maxAbsDiff(predict((await load(bytes)).model, loadMnist('test', 50).images, [28, 28, 1]), reference)).toBe(0);
  });
});
