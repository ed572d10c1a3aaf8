import { NotReadyError } from '../errors.ts';
import type { ScanJob } from './job.ts';
import type { JobDeps, JobOutcome } from './deps.ts';
import { failJob, runJob } from './run-job.ts';

/** What the queue should do with a delivery: acknowledge it, or redeliver it later, or dead-letter it. */
export type Decision = { ack: true; outcome: JobOutcome } | { ack: false; deadLetter: boolean; retryAfterSeconds: number; error: string };

/** Exponential backoff for storage faults: base, 2×base, 4×base … capped at 5 minutes. */
export function backoffSeconds(attempt: number, baseSeconds: number): number {
  return Math.min(300, baseSeconds * 2 ** Math.max(0, attempt - 1));
}

/**
 * Runs one delivery and decides its fate the same way on every queue (Cloudflare Queues, the Node
 * server's SQLite queue, a Lambda's SQS batch): a failure is retried with backoff, or after the last
 * allowed attempt leaves an "error" report and goes to the dead-letter queue.
 */
export async function deliver(job: ScanJob, attempt: number, deps: JobDeps): Promise<Decision> {
  try {
    return { ack: true, outcome: await runJob(job, attempt, deps) };
  } catch (err) {
    const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    if (attempt >= deps.config.maxAttempts) {
      await failJob(job, attempt, err, deps).catch(() => undefined);
      return { ack: false, deadLetter: true, retryAfterSeconds: 0, error };
    }
    return {
      ack: false,
      deadLetter: false,
      retryAfterSeconds: err instanceof NotReadyError ? err.delaySeconds : backoffSeconds(attempt, deps.config.retryBaseSeconds),
      error,
    };
  }
}
