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
  /** Keys of the outputs, once written. */
  outputs: { report: string; verdict: string; repaired: string[] } | null;
}

/**
 * The service's own state: which deliveries it has seen (replays are refused) and where each scan
 * stands. Kept beside the outputs in object storage on Workers; the Node server keeps it in SQLite.
 */
export interface Ledger {
  /** Records a delivery id of a source; false when it was recorded before. */
  firstDelivery(source: string, id: string): Promise<boolean>;
  /** Forgets a delivery whose job could not be queued, so the sender's retry is taken. */
  forgetDelivery(source: string, id: string): Promise<void>;
  put(record: ScanRecord): Promise<void>;
  get(id: string): Promise<ScanRecord | null>;
  /** Scans of one object, newest first. */
  byObject(bucket: string, key: string): Promise<ScanRecord[]>;
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

  async firstDelivery(source: string, id: string): Promise<boolean> {
    return this.store.put(`${this.prefix}deliveries/${source}/${safeSegment(id)}`, '', { createOnly: true });
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
