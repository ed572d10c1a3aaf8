import type { MessageBatch, Queue, R2Bucket } from '@cloudflare/workers-types/index.ts';
import type { ScanJob } from '../service/jobs/job.ts';

/** The Worker's bindings (wrangler.toml) and its vars and secrets (names in docs/service.md). */
export interface Env {
  /** The R2 bucket models are uploaded to; outputs go under SHAPGUARD_OUTPUT_PREFIX in it. */
  MODELS: R2Bucket;
  /** Name of the bucket bound to MODELS, as R2 events and webhooks name it. */
  MODELS_BUCKET_NAME: string;
  /** Our jobs and R2's event notifications share this queue. */
  JOBS: Queue<ScanJob>;
  [variable: string]: unknown;
}

export type QueueBatch = MessageBatch<unknown>;
