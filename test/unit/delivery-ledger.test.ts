import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteState } from '../../src/server/sqlite-state.ts';
import { formatCursor, ObjectLedger, parseCursor, type Ledger } from '../../src/service/ledger.ts';
import { MemoryStore } from '../../src/service/storage/memory.ts';

const JOB = 'scan_0123456789abcdef01234567';
const dbPath = () => join(mkdtempSync(join(tmpdir(), 'sg-ledger-')), 'state.db');

// A replayed delivery id is answered with the jobs its first delivery queued, so both ledgers must keep them.
describe.each([
  ['object store (Workers)', (): Ledger => new ObjectLedger(new MemoryStore('outputs'), '.shapguard/')],
  ['SQLite (Node server)', (): Ledger => new SqliteState(dbPath())],
])('delivery memory, %s', (_name, make) => {
  it('keeps the first delivery’s jobs; the replay records nothing', async () => {
    const ledger = make();
    expect(await ledger.firstDelivery('standard', 'msg_1', [JOB])).toBe(true);
    expect(await ledger.firstDelivery('standard', 'msg_1', ['scan_ffffffffffffffffffffffff'])).toBe(false);
    expect(await ledger.deliveryJobs('standard', 'msg_1')).toEqual([JOB]);
    expect(await ledger.deliveryJobs('standard', 'msg_unknown')).toEqual([]);
    await ledger.forgetDelivery('standard', 'msg_1');
    expect(await ledger.deliveryJobs('standard', 'msg_1')).toEqual([]);
  });
});

describe('SQLite state from before deliveries kept their jobs', () => {
  it('gains the column on open, and its old deliveries still count as seen (with no jobs known)', async () => {
    const path = dbPath();
    const old = new Database(path);
    old.exec('CREATE TABLE deliveries (source TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (source, id))');
    old.prepare('INSERT INTO deliveries VALUES (?, ?, ?)').run('standard', 'msg_old', Date.now());
    old.close();
    const state = new SqliteState(path);
    expect(await state.firstDelivery('standard', 'msg_old', [JOB])).toBe(false);
    expect(await state.deliveryJobs('standard', 'msg_old')).toEqual([]);
    expect(await state.firstDelivery('standard', 'msg_new', [JOB])).toBe(true);
    expect(await state.deliveryJobs('standard', 'msg_new')).toEqual([JOB]);
  });
});

// GET /v1/scans without a key pages through both ledgers the same way: newest first, ties by id.
describe.each([
  ['object store (Workers)', (): Ledger => new ObjectLedger(new MemoryStore('outputs'), '.shapguard/')],
  ['SQLite (Node server)', (): Ledger => new SqliteState(dbPath())],
])('recent scans, %s', (_name, make) => {
  const record = (n: number, receivedAt: string) => ({
    id: `scan_${String(n).padStart(24, '0')}`,
    state: 'queued' as const,
    object: { bucket: 'models', key: `m${n}/model.json` },
    via: 'api' as const,
    receivedAt,
    updatedAt: receivedAt,
    attempts: 0,
    verdict: null,
    reason: null,
    outputs: null,
  });

  it('pages newest first with a cursor, each record once however often it was updated', async () => {
    const ledger = make();
    const times = [
      '2026-12-01T10:00:00.000Z',
      '2026-12-02T09:00:00.000Z',
      '2026-12-02T09:00:00.000Z',
      '2026-11-30T23:59:59.999Z',
      '2026-12-02T12:30:00.000Z',
    ];
    for (const [i, t] of times.entries()) await ledger.put(record(i + 1, t));
    await ledger.put({ ...record(1, times[0]!), state: 'done', updatedAt: '2026-12-02T13:00:00.000Z' });
    const ids: string[] = [];
    let page = await ledger.recent(2, null);
    const sizes = [page.scans.length];
    ids.push(...page.scans.map((s) => s.id));
    while (page.next !== null) {
      page = await ledger.recent(2, page.next);
      sizes.push(page.scans.length);
      ids.push(...page.scans.map((s) => s.id));
    }
    expect(sizes).toEqual([2, 2, 1]);
    expect(ids.map((id) => Number(id.slice(5)))).toEqual([5, 2, 3, 1, 4]);
    expect((await ledger.recent(10, null)).scans.find((s) => s.id === record(1, '').id)?.state).toBe('done');
    expect((await ledger.recent(10, null)).next).toBeNull();
  });
});

describe('scan cursors', () => {
  it('read back what they wrote and nothing else', () => {
    const c = { receivedAt: '2026-12-02T09:00:00.000Z', id: JOB };
    expect(parseCursor(formatCursor(c))).toEqual(c);
    for (const bad of ['', 'x', `2026-13-45T99:00:00.000Z~${JOB}`, `2026-12-02T09:00:00.000Z~scan_1`, `${c.receivedAt}~${JOB}~x`])
      expect(parseCursor(bad)).toBeNull();
  });
});
