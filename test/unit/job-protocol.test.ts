import { describe, expect, it } from 'vitest';
import type { ScanReport } from '../../src/core/output/report.ts';
import { emptyReport, type ScanResult } from '../../src/core/scan/scan.ts';
import { configFromEnv } from '../../src/service/config.ts';
import type { JobDeps, ScanFn } from '../../src/service/jobs/deps.ts';
import { deliver } from '../../src/service/jobs/deliver.ts';
import { jobIdFor, type ScanJob } from '../../src/service/jobs/job.ts';
import { readModelFiles } from '../../src/service/jobs/read-model.ts';
import { readSampleObjects, samplePrefixFor } from '../../src/service/jobs/read-sample.ts';
import { SAMPLE_LIMITS } from '../../src/core/sample/sample.ts';
import { failJob } from '../../src/service/jobs/run-job.ts';
import { ObjectLedger } from '../../src/service/ledger.ts';
import { MemoryStore } from '../../src/service/storage/memory.ts';
import type { ObjectStore, PutOptions } from '../../src/service/storage/object-store.ts';

// The job protocol (lease, commit order, recovery) against an in-memory bucket with a fake scan: no
// engine, no server. The real scans through real stores are the integration tier's.

const BUCKET = 'models';
const MODEL_JSON = JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['w.bin'], weights: [] }] });
const decoder = new TextDecoder();

/** A scan result that claims a repair, with two repaired files. */
function fakeResult(tag = 'a'): ScanResult {
  const report: ScanReport = { ...emptyReport({ toolVersion: 'test', seed: 1 }), verdict: 'backdoor', reason: null };
  report.repair = { status: 'repaired', reason: null, pruned: [], curve: [], rounds: [], check: null, output: null };
  const repaired = new Map<string, Uint8Array>([
    ['model.json', new TextEncoder().encode(MODEL_JSON)],
    ['w.bin', new TextEncoder().encode(`repaired-${tag}`)],
  ]);
  return { report, repaired, evidence: [] };
}

/** A store that records every write's key in order and can fail chosen writes. */
class Recording implements ObjectStore {
  readonly writes: string[] = [];
  /** Called before a write: throw to fail it before it happens. */
  before: (key: string, options?: PutOptions) => Promise<void> | void = () => undefined;
  /** Called after a write succeeded: throw to lose its answer (the object is stored all the same). */
  after: (key: string) => void = () => undefined;

  constructor(readonly inner: MemoryStore) {}

  get bucket() {
    return this.inner.bucket;
  }
  get(key: string) {
    return this.inner.get(key);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  async put(key: string, body: Uint8Array | string, options?: PutOptions) {
    await this.before(key, options);
    const ok = await this.inner.put(key, body, options);
    if (ok) this.writes.push(key);
    if (ok) this.after(key);
    return ok;
  }
}

async function setup() {
  const memory = new MemoryStore(BUCKET);
  await memory.put('m/model.json', MODEL_JSON);
  await memory.put('m/w.bin', 'weights');
  const store = new Recording(memory);
  const head = (await memory.head('m/model.json'))!;
  const object = { bucket: BUCKET, key: 'm/model.json', etag: head.etag };
  const job: ScanJob = {
    type: 'shapguard.scan',
    id: await jobIdFor(object),
    object,
    via: 'api',
    deliveryId: null,
    receivedAt: '2026-12-01T00:00:00.000Z',
  };
  const config = configFromEnv({ RETRY_BASE_SECONDS: '1', MAX_ATTEMPTS: '3' });
  let clock = Date.parse('2026-12-01T00:00:00.000Z');
  const deps = (holderId: string, scan: ScanFn): JobDeps => ({
    config,
    stores: (b) => (b === BUCKET ? store : null),
    ledger: new ObjectLedger(memory, `${config.outputPrefix}.state/`),
    scan,
    errorReport: (reason) => ({ ...emptyReport({ toolVersion: 'test' }), reason }),
    holderId,
    now: () => new Date(clock),
  });
  // Outputs are keyed by the version read: model.json's ETag with a digest of its shard's.
  const { version } = await readModelFiles(memory, 'm/model.json', 0);
  const folder = `shapguard/m/model.json/${version}/`;
  return { memory, store, job, config, deps, folder, version, advance: (seconds: number) => (clock += seconds * 1000) };
}

/** A fake scan that counts its calls. */
function counting(result: () => ScanResult = () => fakeResult()) {
  const calls = { n: 0 };
  const scan: ScanFn = async () => {
    calls.n++;
    return result();
  };
  return { scan, calls };
}

const outputsOf = (keys: string[]) => keys.filter((k) => k.startsWith('shapguard/m/model.json/'));
const nameOf = (key: string) => key.replace(/^shapguard\/m\/model\.json\/[^/]+\//, '');

describe('job protocol', () => {
  it('commits in order: repaired files, report.html, report.json, verdict.json; the lease goes last', async () => {
    const { store, memory, job, deps } = await setup();
    const { scan } = counting();
    const decision = await deliver(job, 1, deps('w1', scan));
    expect(decision.ack).toBe(true);
    expect(decision.ack && decision.outcome.status).toBe('scanned');
    expect(outputsOf(store.writes).map(nameOf)).toEqual([
      '.lease',
      'repaired/model.json',
      'repaired/w.bin',
      'report.html',
      'report.json',
      'verdict.json',
    ]);
    expect(outputsOf(memory.keys()).map(nameOf)).not.toContain('.lease');
    const record = await deps('w1', scan).ledger.get(job.id);
    expect(record?.state).toBe('done');
    expect(record?.verdict).toBe('backdoor');
  });

  it('a later delivery of a scanned version scans nothing and writes only the marks', async () => {
    const { store, job, deps } = await setup();
    const { scan, calls } = counting();
    await deliver(job, 1, deps('w1', scan));
    store.writes.length = 0;
    const again = await deliver(job, 1, deps('w2', scan));
    expect(again.ack && again.outcome.status).toBe('already-scanned');
    expect(calls.n).toBe(1);
    expect(outputsOf(store.writes).map(nameOf)).toEqual(['verdict.json']);
  });

  it('two workers racing on one version: one scans, the other is told who holds the lease', async () => {
    const { job, deps } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const calls = { n: 0 };
    const slow: ScanFn = async () => {
      calls.n++;
      await gate;
      return fakeResult();
    };
    const first = deliver(job, 1, deps('w1', slow));
    // Let the first take its lease and start scanning.
    await new Promise((r) => setTimeout(r, 20));
    const second = await deliver(job, 1, deps('w2', slow));
    expect(second.ack && second.outcome).toMatchObject({ status: 'busy', owner: 'w1' });
    release();
    expect((await first).ack).toBe(true);
    expect(calls.n).toBe(1);
  });

  it("a dead worker's expired lease is taken over; a live one is not", async () => {
    const { memory, job, deps, advance, folder } = await setup();
    await memory.put(
      `${folder}.lease`,
      JSON.stringify({ owner: 'dead', expiresAt: new Date(Date.parse('2026-12-01T00:00:00Z') + 60_000).toISOString() }),
    );
    const { scan, calls } = counting();
    const blocked = await deliver(job, 1, deps('w1', scan));
    expect(blocked.ack && blocked.outcome.status).toBe('busy');
    expect(calls.n).toBe(0);
    advance(61);
    const taken = await deliver(job, 1, deps('w1', scan));
    expect(taken.ack && taken.outcome.status).toBe('scanned');
    expect(calls.n).toBe(1);
  });

  it('of two takers of one expired lease, only one wins (If-Match); the other is retried', async () => {
    const { memory, store, job, deps, advance, folder } = await setup();
    await memory.put(`${folder}.lease`, JSON.stringify({ owner: 'dead', expiresAt: '2026-12-01T00:00:30.000Z' }));
    advance(60);
    // Just before w2 replaces the expired lease (If-Match on the dead one), w3 replaces it first.
    store.before = async (key, options) => {
      if (key === `${folder}.lease` && options?.ifMatch !== undefined)
        await memory.put(key, JSON.stringify({ owner: 'w3', expiresAt: '2026-12-01T01:00:00.000Z' }));
    };
    const { scan, calls } = counting();
    const lost = await deliver(job, 1, deps('w2', scan));
    expect(lost.ack).toBe(false);
    expect(!lost.ack && lost.error).toMatch(/another worker took the expired lease first/);
    expect(calls.n).toBe(0);
  });

  it('a report write whose answer was lost: the retry finds the report, keeps it, and completes the marks', async () => {
    const { store, memory, job, deps, folder } = await setup();
    store.after = (key) => {
      if (key.endsWith('report.json')) throw new Error('connection reset after the write');
    };
    const { scan, calls } = counting(() => fakeResult(`run${Math.random()}`));
    const first = await deliver(job, 1, deps('w1', scan));
    expect(first.ack).toBe(false);
    const stored = decoder.decode((await memory.get(`${folder}report.json`))!.body);
    expect(await memory.get(`${folder}verdict.json`)).toBeNull();
    store.after = () => undefined;
    const retry = await deliver(job, 2, deps('w1', scan));
    expect(retry.ack && retry.outcome.status).toBe('already-scanned');
    expect(calls.n).toBe(1);
    expect(decoder.decode((await memory.get(`${folder}report.json`))!.body)).toBe(stored);
    expect(await memory.get(`${folder}verdict.json`)).not.toBeNull();
  });

  it('a crash between the repaired files and the report: the next delivery scans again and replaces the leftovers', async () => {
    const { store, memory, job, deps, advance, folder } = await setup();
    store.before = (key) => {
      if (key.endsWith('report.html')) throw new Error('process killed');
    };
    await deliver(
      job,
      1,
      deps('w1', async () => fakeResult('first')),
    );
    expect(decoder.decode((await memory.get(`${folder}repaired/w.bin`))!.body)).toBe('repaired-first');
    expect(await memory.get(`${folder}report.json`)).toBeNull();
    store.before = () => undefined;
    // The same worker (a restart on the same state) resumes its own lease at once; another waits it out.
    const other = await deliver(
      job,
      2,
      deps('w2', async () => fakeResult('second')),
    );
    expect(other.ack && other.outcome.status).toBe('busy');
    advance(3600);
    const again = await deliver(
      job,
      2,
      deps('w2', async () => fakeResult('second')),
    );
    expect(again.ack && again.outcome.status).toBe('scanned');
    expect(decoder.decode((await memory.get(`${folder}repaired/w.bin`))!.body)).toBe('repaired-second');
    expect(await memory.get(`${folder}report.json`)).not.toBeNull();
  });

  it('a crash after the report, before the marks: the next delivery writes the marks without scanning', async () => {
    const { store, memory, job, deps, folder } = await setup();
    store.before = (key) => {
      if (key.endsWith('verdict.json')) throw new Error('process killed');
    };
    const { scan, calls } = counting();
    expect((await deliver(job, 1, deps('w1', scan))).ack).toBe(false);
    store.before = () => undefined;
    const next = await deliver(job, 2, deps('w1', scan));
    expect(next.ack && next.outcome.status).toBe('already-scanned');
    expect(calls.n).toBe(1);
    const mark = JSON.parse(decoder.decode((await memory.get(`${folder}verdict.json`))!.body)) as { version: string; repaired: string[] };
    expect(mark.version).toBe(folder.split('/').at(-2));
    expect(mark.repaired).toEqual([`${folder}repaired/model.json`, `${folder}repaired/w.bin`]);
  });

  it('the last failed delivery leaves an error report, unless another worker still holds the lease', async () => {
    const { memory, job, deps } = await setup();
    // The last delivery failed on storage, so only the version the event named is known.
    const folder = `shapguard/m/model.json/${job.object.etag}/`;
    const d = deps('w1', counting().scan);
    await memory.put(`${folder}.lease`, JSON.stringify({ owner: 'w9', expiresAt: '2026-12-01T01:00:00.000Z' }));
    await failJob(job, 3, new Error('storage down'), d);
    expect(await memory.get(`${folder}report.json`)).toBeNull();
    expect((await d.ledger.get(job.id))?.state).toBe('failed');
    await memory.delete(`${folder}.lease`);
    await failJob(job, 3, new Error('storage down'), d);
    const report = JSON.parse(decoder.decode((await memory.get(`${folder}report.json`))!.body)) as ScanReport;
    expect(report.verdict).toBe('error');
    expect(report.reason).toBe('gave up after 3 attempts: storage down');
    expect(await memory.get(`${folder}verdict.json`)).not.toBeNull();
  });

  it('when even the error report cannot be written, the ledger says why', async () => {
    const { store, job, deps } = await setup();
    store.before = () => {
      throw new Error('bucket unreachable');
    };
    const d = deps('w1', counting().scan);
    await failJob(job, 3, new Error('storage down'), d);
    const record = await d.ledger.get(job.id);
    expect(record?.state).toBe('failed');
    expect(record?.reason).toBe('gave up after 3 attempts: storage down; the error report could not be written: bucket unreachable');
  });
});

describe('the marks: what may ship, unmissable', () => {
  /** A bucket with S3-style object tags; tag writes go into the same log as object writes. */
  class Tagged extends Recording {
    readonly tagSets = new Map<string, Record<string, string>>();
    readonly tags = {
      get: async (key: string) => ({ ...this.tagSets.get(key) }),
      put: async (key: string, tags: Record<string, string>) => {
        this.tagSets.set(key, { ...tags });
        this.writes.push(`tags:${key}`);
      },
    };
  }

  async function scanned(result: ScanResult, userTags: Record<string, string> = { owner: 'ml' }) {
    const base = await setup();
    const store = new Tagged(base.memory);
    store.tagSets.set('m/model.json', userTags);
    const deps = { ...base.deps('w1', counting(() => result).scan), stores: (b: string) => (b === BUCKET ? store : null) };
    await deliver(base.job, 1, deps);
    const mark = JSON.parse(decoder.decode((await base.memory.get(`${base.folder}verdict.json`))!.body));
    return { ...base, store, mark };
  }

  it('a certified repair: the upload is tagged not deployable, only its repaired files deployable, and only once the report stands', async () => {
    const { store, folder, mark } = await scanned(fakeResult());
    const repaired = [`${folder}repaired/model.json`, `${folder}repaired/w.bin`];
    expect(mark).toMatchObject({ verdict: 'backdoor', deployable: false, ship: 'repaired', repaired });
    expect(store.tagSets.get('m/model.json')).toMatchObject({
      owner: 'ml',
      'shapguard-verdict': 'backdoor',
      'shapguard-deployable': 'false',
      'shapguard-ship': 'repaired',
      'shapguard-report': `${folder}report.json`,
    });
    for (const key of repaired)
      expect(store.tagSets.get(key)).toMatchObject({ 'shapguard-verdict': 'repaired', 'shapguard-deployable': 'true' });
    const firstRepairedTag = store.writes.indexOf(`tags:${repaired[0]}`);
    expect(firstRepairedTag).toBeGreaterThan(store.writes.indexOf(`${folder}report.json`));
  });

  it('a detected backdoor left unrepaired ships nothing and tags nothing deployable; clean ships the upload', async () => {
    const refused = fakeResult();
    refused.report.repair = { ...refused.report.repair!, status: 'not-repaired', reason: 'the check failed' };
    refused.repaired = null;
    const notRepaired = await scanned(refused);
    expect(notRepaired.mark).toMatchObject({ deployable: false, ship: 'nothing', repaired: [] });
    expect([...notRepaired.store.tagSets.values()].filter((t) => t['shapguard-deployable'] === 'true')).toEqual([]);
    const clean = fakeResult();
    clean.report = { ...clean.report, verdict: 'clean', repair: null };
    clean.repaired = null;
    const passed = await scanned(clean);
    expect(passed.mark).toMatchObject({ deployable: true, ship: 'original', repaired: [] });
    expect(passed.store.tagSets.get('m/model.json')).toMatchObject({ 'shapguard-deployable': 'true', 'shapguard-ship': 'original' });
  });

  it("never drops a user's tag to make room: with six of theirs, ours (five) are left off and verdict.json is the mark", async () => {
    const theirs = Object.fromEntries([1, 2, 3, 4, 5, 6].map((i) => [`t${i}`, 'x']));
    const { store, mark } = await scanned(fakeResult(), theirs);
    expect(store.tagSets.get('m/model.json')).toEqual(theirs);
    expect(mark.ship).toBe('repaired');
  });
});

describe('in-memory store', () => {
  it('honours create-only and If-Match', async () => {
    const s = new MemoryStore('b');
    expect(await s.put('k', 'one', { createOnly: true })).toBe(true);
    expect(await s.put('k', 'two', { createOnly: true })).toBe(false);
    const { etag } = (await s.head('k'))!;
    expect(await s.put('k', 'three', { ifMatch: 'nope' })).toBe(false);
    expect(await s.put('k', 'three', { ifMatch: etag })).toBe(true);
    expect(await s.put('k', 'four', { ifMatch: etag })).toBe(false);
    expect(decoder.decode((await s.get('k'))!.body)).toBe('three');
    expect(await s.put('gone', 'x', { ifMatch: etag })).toBe(false);
  });

  it('gives equal bytes equal ETags and returns copies', async () => {
    const s = new MemoryStore('b');
    await s.put('a', 'same');
    await s.put('b', 'same');
    expect((await s.head('a'))!.etag).toBe((await s.head('b'))!.etag);
    const got = (await s.get('a'))!;
    got.body[0] = 0;
    expect(decoder.decode((await s.get('a'))!.body)).toBe('same');
    expect(await s.list('')).toEqual(['a', 'b']);
  });
});

describe('CLEAN_SAMPLES: a trusted sample per model prefix', () => {
  it('parses items split by commas or new lines (prefixes may hold spaces) and refuses malformed ones', () => {
    const config = configFromEnv({ CLEAN_SAMPLES: 'team a/=samples/a/,\n team a/vision/=samples/vision/' });
    expect(config.cleanSamples).toEqual([
      { models: 'team a/', samples: 'samples/a/' },
      { models: 'team a/vision/', samples: 'samples/vision/' },
    ]);
    expect(() => configFromEnv({ CLEAN_SAMPLES: 'models/=samples' })).toThrow(/CLEAN_SAMPLES item models\/=samples: expected/);
    expect(() => configFromEnv({ CLEAN_SAMPLES: 'models/' })).toThrow(/expected <model prefix>=<sample prefix>\//);
    expect(() => configFromEnv({ CLEAN_SAMPLES: 'models/=shapguard/x/' })).toThrow(/a folder outside shapguard\//);
  });

  it('reads the longest matching prefix’s sample, relative to it; none configured is data-free', async () => {
    const store = new MemoryStore(BUCKET);
    await store.put('samples/a/0/x.png', 'a');
    await store.put('samples/vision/1/y.png', 'bb');
    const config = configFromEnv({ CLEAN_SAMPLES: 'team a/=samples/a/,team a/vision/=samples/vision/' });
    expect(samplePrefixFor('team a/vision/m.h5', config)).toBe('samples/vision/');
    const files = await readSampleObjects(store, 'team a/vision/m.h5', config);
    expect(files!.map((f) => [f.path, f.bytes.byteLength])).toEqual([['1/y.png', 2]]);
    expect(await readSampleObjects(store, 'other/m.h5', config)).toBeUndefined();
    await store.put('samples/a/0/huge.png', new Uint8Array(SAMPLE_LIMITS.maxFileBytes + 1));
    await expect(readSampleObjects(store, 'team a/m.h5', config)).rejects.toThrow(/samples\/a\/0\/huge.png is \d+ bytes, more than/);
  });
});
