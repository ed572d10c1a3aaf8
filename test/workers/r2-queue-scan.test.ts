import { createExecutionContext, createMessageBatch, env, getQueueResult } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import worker from '../../src/cloudflare/index.ts';
import recorded from '../../webhooks/r2/put-object.json';

// Runs inside workerd (vitest-pool-workers): tfjs on wasm from the imported module, Miniflare's R2 and
// Queue. The recorded R2 notification from webhooks/ is replayed into the consumer, which must leave the
// scan's outputs and the verdict mark in R2 and the original untouched.

const text = (o: { arrayBuffer(): Promise<ArrayBuffer> } | null) =>
  o ? o.arrayBuffer().then((b) => new TextDecoder().decode(b)) : Promise.resolve(null);

async function upload(): Promise<string> {
  const key = recorded.object.key;
  const folder = key.slice(0, key.lastIndexOf('/') + 1);
  await env.MODELS.put(
    `${folder}group1-shard1of1.bin`,
    Uint8Array.from(atob(env.FIXTURE_SHARD_B64), (c) => c.charCodeAt(0)),
  );
  // CLEAN_SAMPLES (vitest.config.ts) makes this model's scan few-shot, with the sample under samples/mnist/.
  for (const f of JSON.parse(env.FIXTURE_SAMPLE_JSON) as { path: string; b64: string }[])
    await env.MODELS.put(
      `samples/mnist/${f.path}`,
      Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0)),
    );
  const put = await env.MODELS.put(key, env.FIXTURE_MODEL_JSON);
  return put!.etag;
}

describe('the Worker in workerd', () => {
  it('initialises tfjs on the wasm backend from the imported module', async () => {
    const res = await worker.fetch(new Request('https://shapguard.test/health/wasm') as never, env, createExecutionContext());
    expect(await res.json()).toEqual({ ok: true, backend: 'wasm' });
  });

  it('turns the recorded R2 event into a few-shot scan: repaired model, report and verdict.json in R2, the upload untouched', async () => {
    const etag = await upload();
    const event = { ...recorded, object: { ...recorded.object, eTag: etag } };
    const batch = createMessageBatch('shapguard-jobs', [{ id: 'r2-1', timestamp: new Date(), attempts: 1, body: event }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toEqual(['r2-1']);

    const listed = await env.MODELS.list({ prefix: `shapguard/${recorded.object.key}/` });
    const keys = listed.objects.map((o) => o.key);
    const report = JSON.parse((await text(await env.MODELS.get(keys.find((k) => k.endsWith('/report.json'))!)))!);
    expect(report.verdict).toBe('backdoor');
    expect(report.backend).toMatchObject({ name: 'wasm', simd: true });
    expect(report.detection.flagged).toContain(6);
    // The sample was read from R2 and decoded in workerd, the JPEG among the PNGs: a file not decoded would
    // be missing from its class's ten and counted as ignored.
    expect(report.mode).toBe('few-shot');
    expect(report.sample.images).toBe(100);
    expect(report.sample.perClass).toEqual(Array(10).fill(10));
    expect(report.sample.ignored).toBe(0);
    expect(report.repair.check.heldBack.images).toBe(30);
    expect(
      keys
        .filter((k) => k.includes('/repaired/'))
        .map((k) => k.slice(k.lastIndexOf('/') + 1))
        .sort(),
    ).toEqual(['group1-shard1of1.bin', 'model.json']);
    const mark = JSON.parse((await text(await env.MODELS.get(keys.find((k) => k.endsWith('/verdict.json'))!)))!);
    // The upload may not ship; the certified repaired copy, named in the mark, may.
    expect(mark).toMatchObject({
      verdict: 'backdoor',
      deployable: false,
      ship: 'repaired',
      bucket: 'shapguard-models',
      key: recorded.object.key,
    });
    expect([...mark.repaired].sort()).toEqual(keys.filter((k) => k.includes('/repaired/')).sort());
    expect(keys.some((k) => k.endsWith('/.lease'))).toBe(false);
    // report.html rendered inside workerd, trigger PNGs included.
    const page = await text(await env.MODELS.get(keys.find((k) => k.endsWith('/report.html'))!));
    expect(page).toContain('id="verdict">backdoor</div>');
    expect(page!.match(/src="data:image\/png;base64,/g)).toHaveLength(4);
    expect(await text(await env.MODELS.get(recorded.object.key))).toBe(env.FIXTURE_MODEL_JSON);

    // The same event again (Queues deliver at least once): acknowledged without a second scan.
    const again = createMessageBatch('shapguard-jobs', [{ id: 'r2-2', timestamp: new Date(), attempts: 1, body: event }]);
    const before = (await env.MODELS.head(keys.find((k) => k.endsWith('/report.json'))!))!.uploaded.getTime();
    await worker.queue(again, env);
    expect((await getQueueResult(again, createExecutionContext())).explicitAcks).toEqual(['r2-2']);
    expect((await env.MODELS.head(keys.find((k) => k.endsWith('/report.json'))!))!.uploaded.getTime()).toBe(before);
  });

  it('honours create-only writes on R2', async () => {
    expect(await env.MODELS.put('probe', 'a', { onlyIf: new Headers({ 'if-none-match': '*' }) })).not.toBeNull();
    expect(await env.MODELS.put('probe', 'b', { onlyIf: new Headers({ 'if-none-match': '*' }) })).toBeNull();
    expect(await text(await env.MODELS.get('probe'))).toBe('a');
  });
});
