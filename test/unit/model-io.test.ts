import { beforeAll, describe, expect, it } from 'vitest';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { digestFiles, sha256Hex } from '../../src/core/util/digest.ts';
import { ShapguardError } from '../../src/core/errors.ts';
import { loadTfjsModel, resolveRelative, writeTfjsModel } from '../../src/core/model/tfjs-layers.ts';
import { prunedWeights } from '../../src/core/model/prune-weights.ts';
import { readDir, writeTinyModel } from '../helpers/tiny-model.ts';

async function expectError(p: Promise<unknown>, kind: string, message: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ShapguardError);
  expect((err as ShapguardError).kind).toBe(kind);
  expect((err as ShapguardError).message).toMatch(message);
}

describe('tfjs layers model IO', () => {
  beforeAll(async () => {
    await initWasmBackend();
  });

  it('round-trips byte for byte when nothing changes, across several shards', async () => {
    const files = readDir(await writeTinyModel({ shards: 3 }));
    expect([...files.keys()].filter((f) => f.endsWith('.bin')).length).toBe(3);
    const loaded = await loadTfjsModel(files);
    const out = writeTfjsModel(loaded, new Map());
    expect([...out.keys()].sort()).toEqual([...files.keys()].sort());
    for (const [k, v] of files) expect(Buffer.compare(Buffer.from(out.get(k)!), Buffer.from(v))).toBe(0);
  });

  it('writes pruned channels as zeros and leaves every other byte, the topology and the sharding alone', async () => {
    const files = readDir(await writeTinyModel({ shards: 3 }));
    const loaded = await loadTfjsModel(files);
    const changed = prunedWeights(loaded, loaded.model, [
      { layer: 'c2', channel: 1, position: null },
      { layer: 'c2', channel: 4, position: null },
    ]);
    expect([...changed.keys()].sort()).toEqual(['c2/bias', 'c2/kernel']);
    const out = writeTfjsModel(loaded, changed);
    expect(new TextDecoder().decode(out.get('model.json'))).toBe(new TextDecoder().decode(files.get('model.json')));
    const again = await loadTfjsModel(out);
    const before = loaded.model.getLayer('c2').getWeights();
    const after = again.model.getLayer('c2').getWeights();
    const [kb, ka] = [before[0]!.dataSync(), after[0]!.dataSync()];
    for (let i = 0; i < kb.length; i++) expect(ka[i]).toBe(i % 6 === 1 || i % 6 === 4 ? 0 : kb[i]);
    const [bb, ba] = [before[1]!.dataSync(), after[1]!.dataSync()];
    for (let i = 0; i < 6; i++) expect(ba[i]).toBe(i === 1 || i === 4 ? 0 : bb[i]);
    // Other layers: identical values.
    for (const name of ['c1', 'out']) {
      const x = loaded.model
        .getLayer(name)
        .getWeights()
        .map((t) => Array.from(t.dataSync()));
      const y = again.model
        .getLayer(name)
        .getWeights()
        .map((t) => Array.from(t.dataSync()));
      expect(y).toEqual(x);
    }
    for (const [k, v] of out) expect(v.byteLength).toBe(files.get(k)!.byteLength);
  });

  it('digests every file and the sorted "<path> <sha256>" lines', async () => {
    const files = new Map([
      ['b.bin', new Uint8Array([1, 2])],
      ['model.json', new TextEncoder().encode('{}')],
    ]);
    const d = await digestFiles(files);
    expect(d.files.map((f) => f.path)).toEqual(['b.bin', 'model.json']);
    expect(d.files[0]!.sha256).toBe('a12871fee210fb8619291eaea194581cbd2531e4b23759d225f6806923f63222');
    const lines = d.files.map((f) => `${f.path} ${f.sha256}`).join('\n');
    expect(d.combined).toBe(await sha256Hex(new TextEncoder().encode(lines)));
  });

  it('refuses shard paths that leave the model folder', () => {
    expect(() => resolveRelative('model.json', '../x.bin')).toThrow(/leaves the model's folder/);
    expect(() => resolveRelative('model.json', '/etc/passwd')).toThrow(/relative/);
    expect(() => resolveRelative('model.json', 'https://evil/x.bin')).toThrow(/relative/);
    expect(resolveRelative('sub/model.json', './w.bin')).toBe('sub/w.bin');
  });

  it('names what is wrong with a broken model', async () => {
    const good = readDir(await writeTinyModel());
    const json = JSON.parse(new TextDecoder().decode(good.get('model.json'))) as {
      weightsManifest: { paths: string[]; weights: { name: string; dtype: string }[] }[];
      modelTopology: { config: { layers: { class_name: string }[] } };
    };
    const withJson = (j: unknown, extra: [string, Uint8Array][] = []) =>
      new Map([...good.entries(), ['model.json', new TextEncoder().encode(JSON.stringify(j))], ...extra]);
    const shard = json.weightsManifest[0]!.paths[0]!;

    await expectError(
      loadTfjsModel(new Map([...good.entries(), ['model.json', new TextEncoder().encode('{not json')]])),
      'input',
      /not valid JSON/,
    );
    const noShard = new Map(good);
    noShard.delete(shard);
    await expectError(loadTfjsModel(noShard), 'input', new RegExp(`shard "${shard}" .* is missing`));
    await expectError(
      loadTfjsModel(new Map([...good.entries(), [shard, good.get(shard)!.subarray(4)]])),
      'input',
      /hold \d+ bytes but model.json declares \d+/,
    );
    const int8 = structuredClone(json);
    int8.weightsManifest[0]!.weights[0]!.dtype = 'int32';
    await expectError(loadTfjsModel(withJson(int8)), 'unsupported', /dtype int32; only float32/);
    const lambda = structuredClone(json);
    lambda.modelTopology.config.layers[1]!.class_name = 'Lambda';
    await expectError(loadTfjsModel(withJson(lambda)), 'unsupported', /layer type "Lambda" is not supported/);
    const nan = good.get(shard)!.slice();
    new DataView(nan.buffer).setFloat32(8, NaN, true);
    await expectError(loadTfjsModel(new Map([...good.entries(), [shard, nan]])), 'input', /non-finite value/);
    await expectError(
      loadTfjsModel(withJson({ format: 'graph-model', modelTopology: {}, weightsManifest: [] })),
      'unsupported',
      /only TensorFlow.js layers models/,
    );
  });
});
