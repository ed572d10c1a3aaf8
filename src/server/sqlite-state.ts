import Database from 'better-sqlite3';
import type { ScanJob } from '../service/jobs/job.ts';
import { jobIdsOf, pageOf, type Ledger, type ScanCursor, type ScanPage, type ScanRecord } from '../service/ledger.ts';

/** Deliveries are remembered this long; senders stop retrying well before (SNS, MLflow: minutes). */
const DELIVERY_MEMORY_MS = 7 * 24 * 3600 * 1000;

/**
 * The Node server's durable state in one SQLite file: the job queue (so an accepted job survives a crash),
 * seen delivery ids and scan records. better-sqlite3 is synchronous; each statement is one transaction.
 */
export class SqliteState implements Ledger {
  readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, message TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        not_before INTEGER NOT NULL, error TEXT, updated INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, not_before);
      CREATE TABLE IF NOT EXISTS deliveries (source TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, jobs TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (source, id));
      CREATE TABLE IF NOT EXISTS scans (id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, received_at TEXT NOT NULL, record TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS scans_object ON scans (bucket, key);
      CREATE INDEX IF NOT EXISTS scans_recent ON scans (received_at DESC, id);
    `);
    // A state file from before deliveries kept their jobs.
    const columns = this.db.prepare('PRAGMA table_info(deliveries)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'jobs')) this.db.exec("ALTER TABLE deliveries ADD COLUMN jobs TEXT NOT NULL DEFAULT '[]'");
  }

  async firstDelivery(source: string, id: string, jobs: readonly string[]): Promise<boolean> {
    const now = Date.now();
    this.db.prepare('DELETE FROM deliveries WHERE at < ?').run(now - DELIVERY_MEMORY_MS);
    return (
      this.db
        .prepare('INSERT OR IGNORE INTO deliveries (source, id, at, jobs) VALUES (?, ?, ?, ?)')
        .run(source, id, now, JSON.stringify(jobs)).changes === 1
    );
  }

  async deliveryJobs(source: string, id: string): Promise<string[]> {
    const row = this.db.prepare('SELECT jobs FROM deliveries WHERE source = ? AND id = ?').get(source, id) as { jobs: string } | undefined;
    return row ? jobIdsOf(row.jobs) : [];
  }

  async forgetDelivery(source: string, id: string): Promise<void> {
    this.db.prepare('DELETE FROM deliveries WHERE source = ? AND id = ?').run(source, id);
  }

  async put(record: ScanRecord): Promise<void> {
    this.db
      .prepare(
        'INSERT INTO scans (id, bucket, key, received_at, record) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET record = excluded.record',
      )
      .run(record.id, record.object.bucket, record.object.key, record.receivedAt, JSON.stringify(record));
  }

  async get(id: string): Promise<ScanRecord | null> {
    const row = this.db.prepare('SELECT record FROM scans WHERE id = ?').get(id) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as ScanRecord) : null;
  }

  async byObject(bucket: string, key: string): Promise<ScanRecord[]> {
    const rows = this.db.prepare('SELECT record FROM scans WHERE bucket = ? AND key = ? ORDER BY received_at DESC').all(bucket, key) as {
      record: string;
    }[];
    return rows.map((r) => JSON.parse(r.record) as ScanRecord);
  }

  async recent(limit: number, after: ScanCursor | null): Promise<ScanPage> {
    const rows = (
      after
        ? this.db
            .prepare('SELECT record FROM scans WHERE received_at < ? OR (received_at = ? AND id > ?) ORDER BY received_at DESC, id LIMIT ?')
            .all(after.receivedAt, after.receivedAt, after.id, limit + 1)
        : this.db.prepare('SELECT record FROM scans ORDER BY received_at DESC, id LIMIT ?').all(limit + 1)
    ) as { record: string }[];
    return pageOf(
      rows.map((r) => JSON.parse(r.record) as ScanRecord),
      limit,
    );
  }

  /** Queues jobs; one already waiting or running is left as it is, one finished before is queued again. */
  enqueue(jobs: ScanJob[]): void {
    const now = Date.now();
    const insert = this.db.prepare(
      `INSERT INTO jobs (id, message, state, attempts, not_before, updated) VALUES (?, ?, 'pending', 0, ?, ?)
       ON CONFLICT (id) DO UPDATE SET message = excluded.message, state = 'pending', attempts = 0, not_before = excluded.not_before, error = NULL, updated = excluded.updated
       WHERE jobs.state IN ('done', 'dead')`,
    );
    this.db.transaction(() => {
      for (const j of jobs) insert.run(j.id, JSON.stringify(j), now, now);
    })();
  }

  /** Takes the next due job and counts the attempt; null when none is due. */
  claim(now: number): { job: ScanJob; attempt: number } | null {
    const row = this.db
      .prepare(
        `UPDATE jobs SET state = 'running', attempts = attempts + 1, updated = ?
         WHERE id = (SELECT id FROM jobs WHERE state = 'pending' AND not_before <= ? ORDER BY not_before LIMIT 1)
         RETURNING message, attempts`,
      )
      .get(now, now) as { message: string; attempts: number } | undefined;
    return row ? { job: JSON.parse(row.message) as ScanJob, attempt: row.attempts } : null;
  }

  finish(id: string, state: 'done' | 'dead', error: string | null = null): void {
    this.db.prepare('UPDATE jobs SET state = ?, error = ?, updated = ? WHERE id = ?').run(state, error, Date.now(), id);
  }

  retryLater(id: string, notBefore: number, error: string): void {
    this.db
      .prepare("UPDATE jobs SET state = 'pending', not_before = ?, error = ?, updated = ? WHERE id = ?")
      .run(notBefore, error, Date.now(), id);
  }

  /** Jobs a killed process left running go back to the queue (their attempt stays counted). */
  recover(): number {
    return this.db.prepare("UPDATE jobs SET state = 'pending', updated = ? WHERE state = 'running'").run(Date.now()).changes;
  }

  /** When the next delayed job is due, or null with none waiting. */
  nextDue(): number | null {
    const row = this.db.prepare("SELECT MIN(not_before) AS t FROM jobs WHERE state = 'pending'").get() as { t: number | null };
    return row.t;
  }

  counts(): Record<string, number> {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state').all() as { state: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  close(): void {
    this.db.close();
  }
}
