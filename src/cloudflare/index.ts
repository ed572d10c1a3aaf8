import type { ExecutionContext, ExportedHandler, Request as CfRequest } from '@cloudflare/workers-types/index.ts';
import { initWasmBackend } from '../core/tfjs/backend.ts';
import type { Hono } from 'hono';
import { createApp } from '../service/app.ts';
import { configFromEnv, type ServiceConfig } from '../service/config.ts';
import { deliver } from '../service/jobs/deliver.ts';
import { jobsFor, type ScanJob } from '../service/jobs/job.ts';
import { ObjectLedger } from '../service/ledger.ts';
import type { JobDeps } from '../service/jobs/run-job.ts';
import { afterScanFor, registriesFor } from '../service/registries.ts';
import { makeScanner } from '../service/scanner.ts';
import { isR2Event, objectsOfR2Event } from '../service/sources/r2.ts';
import { R2Store, type R2BucketLike } from '../service/storage/r2.ts';
import { S3Store } from '../service/storage/s3.ts';
import { s3ClientFromEnv } from '../service/storage/s3-client.ts';
import { TOOL_VERSION } from '../version.ts';
import { cachingCertFetcher, subscriptionConfirmer } from '../service/verify/sns-fetch.ts';
import type { Env, QueueBatch } from './bindings.ts';
// Workers must import wasm as a precompiled module (wrangler's CompiledWasm rule).
import simd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm';

export type { Env } from './bindings.ts';

interface Runtime {
  config: ServiceConfig;
  deps: JobDeps;
  app: Hono;
}

let runtime: Runtime | undefined;

/**
 * Config, storage, engine and the webhook app for this isolate; built once, since env does not change
 * within an isolate (the request's ExecutionContext reaches the app through Hono's `c.executionCtx`).
 */
function runtimeFor(env: Env): Runtime {
  if (runtime) return runtime;
  const config = configFromEnv(env);
  const store = new R2Store(env.MODELS as unknown as R2BucketLike, env.MODELS_BUCKET_NAME);
  // S3 buckets named in S3_BUCKETS are read and written through @aws-sdk/client-s3 (wrangler's alias
  // gives it an XML builder that works in workerd).
  const s3Buckets = new Set(String(env.S3_BUCKETS ?? '').split(/[\s,]+/).filter(Boolean));
  const s3 = s3Buckets.size > 0 ? s3ClientFromEnv(env as Record<string, string | undefined>) : null;
  const s3Stores = new Map([...s3Buckets].map((b) => [b, new S3Store(s3!, b)]));
  const stores = (bucket: string) => (bucket === store.bucket ? store : (s3Stores.get(bucket) ?? null));
  const scanner = makeScanner(config, TOOL_VERSION, () => initWasmBackend({ simdModule: simd }), (err) => console.error('scan internal error', String(err)));
  const platformFetch: typeof fetch = (input, init) => fetch(input, init);
  const deps: JobDeps = {
    config,
    stores,
    registry: registriesFor(config, platformFetch, stores),
    ledger: new ObjectLedger(store, `${config.outputPrefix}.state/`),
    ...scanner,
    workerId: `worker-${crypto.randomUUID().slice(0, 8)}`,
    now: () => new Date(),
    ...afterScanFor(config, platformFetch),
  };
  const app = createApp({
    config,
    ledger: deps.ledger,
    enqueue: async (jobs) => {
      await env.JOBS.sendBatch(jobs.map((body) => ({ body, contentType: 'json' as const })));
    },
    // Cached per isolate: SNS rotates its signing certificates rarely.
    fetchCert: cachingCertFetcher(platformFetch),
    confirmSubscription: subscriptionConfirmer(platformFetch),
    background: (work, c) => c.executionCtx.waitUntil(work),
    now: () => new Date(),
    onError: (err) => console.error('request failed', err instanceof Error ? err.message : String(err)),
  });
  runtime = { config, deps, app };
  return runtime;
}

/** A queue message is ours (a ScanJob from a webhook) or R2's own event notification. */
async function jobsOf(body: unknown, config: ServiceConfig): Promise<ScanJob[]> {
  if (isR2Event(body)) return jobsFor(objectsOfR2Event(body), 'r2', null, config, new Date());
  const job = body as Partial<ScanJob>;
  return job?.type === 'shapguard.scan' && typeof job.id === 'string' && typeof job.object?.key === 'string' ? [job as ScanJob] : [];
}

export default {
  async fetch(request: CfRequest, env: Env, ctx: ExecutionContext) {
    const url = new URL(request.url);
    if (url.pathname === '/health/wasm') {
      await initWasmBackend({ simdModule: simd });
      return Response.json({ ok: true, backend: 'wasm' }) as unknown as ReturnType<NonNullable<ExportedHandler<Env>['fetch']>>;
    }
    const { app } = runtimeFor(env);
    return app.fetch(request as unknown as Request, env, ctx as never) as unknown as ReturnType<NonNullable<ExportedHandler<Env>['fetch']>>;
  },

  async queue(batch: QueueBatch, env: Env) {
    const { config, deps } = runtimeFor(env);
    // One message at a time: a scan is CPU work on this isolate's one wasm instance.
    for (const message of batch.messages) {
      const jobs = await jobsOf(message.body, config);
      let retry: { delaySeconds: number } | null = null;
      for (const job of jobs) {
        const decision = await deliver(job, message.attempts, deps);
        if (!decision.ack) {
          console.error('job failed', job.id, `attempt ${message.attempts}`, decision.error);
          // After max_retries Cloudflare moves the message to the dead-letter queue.
          retry = { delaySeconds: decision.deadLetter ? 0 : decision.retryAfterSeconds };
        }
      }
      if (retry) message.retry(retry);
      else message.ack();
    }
  },
} satisfies ExportedHandler<Env>;
