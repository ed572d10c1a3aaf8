import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteState } from '../../src/server/sqlite-state.ts';
import { ObjectLedger, type Ledger } from '../../src/service/ledger.ts';
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
