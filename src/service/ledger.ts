import type { Ship } from '../core/output/report.ts';
import type { ObjectRef, ScanJob } from './jobs/job.ts';
import type { ObjectStore } from './storage/object-store.ts';

export type ScanState = 'queued' | 'running' | 'done' | 'failed';

/** What the status API answers about one scan. */
export interface ScanRecord {
  id: string;
  state: ScanState;
  object: ObjectRef;
  via: ScanJob['via'];
  receivedAt: string;
  updatedAt: string;
  attempts: number;
  verdict: string | null;
  reason: string | null;
  /** Keys of the outputs once written, and what may ship (verdict.json's `ship`). */
  outputs: { report: string; verdict: string; repaired: string[]; ship: Ship } | null;
}

/**
 * The service's own state: which deliveries it has seen (replays are refused) and where each scan
 * stands. Kept beside the outputs in object storage on Workers; the Node server keeps it in SQLite.
 */
export interface Ledger {
  /** Records a delivery id of a source with the jobs it queues; false when it was recorded before. */
  firstDelivery(source: string, id: string, jobs: readonly string[]): Promise<boolean>;
  /**
   * The jobs the first delivery of this id queued ([] when unknown): a replay is answered with those, never
   * with ids computed from the replay's own body, which may name another object and no job at all.
   */
  deliveryJobs(source: string, id: string): Promise<string[]>;
  /** Forgets a delivery whose job could not be queued, so the sender's retry is taken. */
  forgetDelivery(source: string, id: string): Promise<void>;
  put(record: ScanRecord): Promise<void>;
  get(id: string): Promise<ScanRecord | null>;
  /** Scans of one object, newest first. */
  byObject(bucket: string, key: string): Promise<ScanRecord[]>;
  /** The most recent scans, newest first (ties by id), `limit` of them after `after` (a page's `next`). */
  recent(limit: number, after: ScanCursor | null): Promise<ScanPage>;
}

/** Where a page of recent scans ended: the last record's receipt time and id. */
export interface ScanCursor {
  receivedAt: string;
  id: string;
}

export interface ScanPage {
  scans: ScanRecord[];
  /** The cursor of the next page; null on the last. */
  next: ScanCursor | null;
}

/** A cursor as the status API writes it in `next`: `<receivedAt>~<id>`. */
export function formatCursor(c: ScanCursor): string {
  return `${c.receivedAt}~${c.id}`;
}

/** A `cursor` query parameter back; null when it is not one formatCursor wrote. */
export function parseCursor(text: string): ScanCursor | null {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z)~(scan_[0-9a-f]{24})$/.exec(text);
  return m && Number.isFinite(Date.parse(m[1]!)) ? { receivedAt: m[1]!, id: m[2]! } : null;
}

/** The page of `limit` from rows already ordered and cut at the cursor, fetched one beyond the limit. */
export function pageOf(rows: ScanRecord[], limit: number): ScanPage {
  const scans = rows.slice(0, limit);
  const last = scans.at(-1);
  return { scans, next: rows.length > limit && last ? { receivedAt: last.receivedAt, id: last.id } : null };
}

/** An object key that lists newest first: the receipt time counted down from the year 2286, then the id. */
function recentKey(c: ScanCursor): string {
  return `${String(9_999_999_999_999 - Date.parse(c.receivedAt)).padStart(13, '0')}_${c.id}`;
}

/** Job ids stored with a delivery; anything else (a record from before they were stored) reads as none. */
export function jobIdsOf(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && /^scan_[0-9a-f]{24}$/.test(x)) : [];
  } catch {
    return [];
  }
}

function safeSegment(text: string): string {
  return encodeURIComponent(text).replace(/%/g, '~');
}

/**
 * A Ledger in an object store under `prefix` (inside the output prefix, so never scanned): a delivery is a
 * create-only object, so two isolates racing on one id agree on who was first.
 */
export class ObjectLedger implements Ledger {
  constructor(
    private readonly store: ObjectStore,
    private readonly prefix: string,
  ) {}

  async firstDelivery(source: string, id: string, jobs: readonly string[]): Promise<boolean> {
    return this.store.put(`${this.prefix}deliveries/${source}/${safeSegment(id)}`, JSON.stringify(jobs), { createOnly: true });
  }

  async deliveryJobs(source: string, id: string): Promise<string[]> {
    const got = await this.store.get(`${this.prefix}deliveries/${source}/${safeSegment(id)}`);
    return got ? jobIdsOf(new TextDecoder().decode(got.body)) : [];
  }

  async forgetDelivery(source: string, id: string): Promise<void> {
    await this.store.delete(`${this.prefix}deliveries/${source}/${safeSegment(id)}`);
  }

  async put(record: ScanRecord): Promise<void> {
    const body = JSON.stringify(record);
    await this.store.put(`${this.prefix}scans/${record.id}.json`, body, { contentType: 'application/json' });
    await this.store.put(
      `${this.prefix}objects/${safeSegment(record.object.bucket)}/${safeSegment(record.object.key)}/${record.id}`,
      record.id,
    );
    await this.store.put(`${this.prefix}recent/${recentKey(record)}`, record.id);
  }

  async get(id: string): Promise<ScanRecord | null> {
    if (!/^scan_[0-9a-f]{24}$/.test(id)) return null;
    const got = await this.store.get(`${this.prefix}scans/${id}.json`);
    return got ? (JSON.parse(new TextDecoder().decode(got.body)) as ScanRecord) : null;
  }

  async byObject(bucket: string, key: string): Promise<ScanRecord[]> {
    const keys = await this.store.list(`${this.prefix}objects/${safeSegment(bucket)}/${safeSegment(key)}/`);
    const records = await Promise.all(keys.map((k) => this.get(k.slice(k.lastIndexOf('/') + 1))));
    return records.filter((r): r is ScanRecord => r !== null).sort((a, b) => b.receivedAt.localeCompare(a.receivedAt));
  }

  /**
   * Object stores list in key order, so the index keys count time down; the listing reads every index key
   * (a store lists a thousand per request), the page's records only.
   */
  async recent(limit: number, after: ScanCursor | null): Promise<ScanPage> {
    const from = `${this.prefix}recent/`;
    const cut = after ? recentKey(after) : '';
    const keys = (await this.store.list(from))
      .map((k) => k.slice(from.length))
      .filter((k) => k > cut)
      .sort()
      .slice(0, limit + 1);
    const records = await Promise.all(keys.map((k) => this.get(k.slice(k.indexOf('_') + 1))));
    return pageOf(
      records.filter((r): r is ScanRecord => r !== null),
      limit,
    );
  }
}
