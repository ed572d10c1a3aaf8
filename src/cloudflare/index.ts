import type { ExecutionContext, ExportedHandler, Request as CfRequest } from '@cloudflare/workers-types/index.ts';
import type { Hono } from 'hono';
import { initWasmBackend } from '../core/tfjs/backend.ts';
import { composeService, webhookApp, type Composed } from '../service/compose.ts';
import type { ServiceConfig } from '../service/config.ts';
import { deliver } from '../service/jobs/deliver.ts';
import { jobsFor, type ScanJob } from '../service/jobs/job.ts';
import { ObjectLedger } from '../service/ledger.ts';
import { isR2Event, objectsOfR2Event } from '../service/sources/r2.ts';
import { R2Store, type R2BucketLike } from '../service/storage/r2.ts';
import { bucketNames, s3Stores } from '../service/storage/s3-client.ts';
import type { Env, QueueBatch } from './bindings.ts';
// Workers must import wasm as a precompiled module (wrangler's CompiledWasm rule).
import simd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm';

export type { Env } from './bindings.ts';

interface Runtime {
  service: Composed;
  app: Hono;
}

let runtime: Runtime | undefined;

/**
 * The service for this isolate, built once (env does not change within an isolate; the request's
 * ExecutionContext reaches the app through Hono's `c.executionCtx`). The R2 bucket bound to MODELS holds
 * uploads, outputs and the service's state; S3 buckets named in S3_BUCKETS are read and written through
 * @aws-sdk/client-s3 (wrangler's alias gives it an XML builder that works in workerd).
 */
function runtimeFor(env: Env): Runtime {
  if (runtime) return runtime;
  const models = new R2Store(env.MODELS as unknown as R2BucketLike, env.MODELS_BUCKET_NAME);
  const platformFetch: typeof fetch = (input, init) => fetch(input, init);
  const service = composeService({
    env,
    stores: new Map([...s3Stores(env, bucketNames(env.S3_BUCKETS)), [models.bucket, models]]),
    ledger: (config) => new ObjectLedger(models, `${config.outputPrefix}.state/`),
    fetch: platformFetch,
    initWasm: () => initWasmBackend({ simdModule: simd }),
    holderId: `worker-${crypto.randomUUID().slice(0, 8)}`,
    registries: true,
    onInternalError: (err) => console.error('scan internal error', String(err)),
  });
  const app = webhookApp(service, platformFetch, {
    enqueue: async (jobs) => {
      await env.JOBS.sendBatch(jobs.map((body) => ({ body, contentType: 'json' as const })));
    },
    background: (work, c) => c.executionCtx.waitUntil(work),
    onError: (err) => console.error('request failed', err instanceof Error ? err.message : String(err)),
  });
  runtime = { service, app };
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
    const { config, deps } = runtimeFor(env).service;
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
