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
}
