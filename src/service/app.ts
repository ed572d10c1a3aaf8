import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ServiceConfig } from './config.ts';
import { MODEL_FILE_NAMES } from '../core/model/files.ts';
import { HttpError } from './errors.ts';
import { isModelKey, jobsFor, type ObjectRef, type ScanJob, type SourceName } from './jobs/job.ts';
import { formatCursor, parseCursor, type Ledger } from './ledger.ts';
import { objectsOfEventBridge } from './sources/eventbridge.ts';
import { objectsOfHubWebhook } from './sources/huggingface.ts';
import { objectsOfMlflowWebhook } from './sources/mlflow.ts';
import { field, parseJsonObject } from './sources/parse-json.ts';
import { objectsOfS3Event } from './sources/s3-event.ts';
import { handleSns } from './sources/sns.ts';
import { objectsOfStandardWebhook } from './sources/standard.ts';
import { MLFLOW_WEBHOOK_HEADERS, STANDARD_WEBHOOK_HEADERS, verifySignedWebhook } from './verify/signed-webhook.ts';
import type { CertFetcher } from './verify/sns.ts';
import { bearerToken, verifyToken } from './verify/token.ts';

export interface AppDeps {
  config: ServiceConfig;
  /** Puts jobs on the queue; the 202 goes out only once this resolved. */
  enqueue: (jobs: ScanJob[]) => Promise<void>;
  ledger: Ledger;
  fetchCert: CertFetcher;
  /** GETs an SNS SubscribeURL. */
  confirmSubscription: (url: string) => Promise<void>;
  /** Work that may finish after the response (Workers: the request's ctx.waitUntil, from `c.executionCtx`). */
  background: (work: Promise<unknown>, c: Context) => void;
  now: () => Date;
  /** Whether the service has a store for a bucket (a delivery naming another could never be scanned). */
  knowsBucket: (bucket: string) => boolean;
  /** Sees unexpected errors (never request bodies or secrets). */
  onError?: (err: unknown) => void;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** Pages of GET /v1/scans: a status page's worth by default, and never more than one answer should carry. */
const DEFAULT_PAGE = 20;
const MAX_PAGE = 100;

function requireEnabled<T>(value: T | null | undefined, source: string): T {
  if (value === null || value === undefined || (Array.isArray(value) && value.length === 0)) {
    throw new HttpError(404, 'source-disabled', `source ${source} is not configured on this service`);
  }
  return value;
}

/**
 * The webhook and status API as a Hono app on Web Standard APIs only, so the Worker and the Node server
 * run the same code. Every webhook is verified on its raw body before it is parsed, answered 202 once its
 * jobs are queued, and never scanned inside the request.
 */
export function createApp(deps: AppDeps): Hono {
  const { config } = deps;
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof HttpError) return c.json({ error: { code: err.code, message: err.message } }, err.status);
    deps.onError?.(err);
    return c.json({ error: { code: 'internal', message: 'internal error' } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: 'not-found', message: `no route ${c.req.method} ${new URL(c.req.url).pathname}` } }, 404));

  const limit = bodyLimit({
    maxSize: config.maxBodyBytes,
    onError: (c) => c.json({ error: { code: 'body-too-large', message: `body exceeds ${config.maxBodyBytes} bytes` } }, 413),
  });
  app.use('/webhooks/*', limit);
  app.use('/v1/*', limit);

  /**
   * Refuses at the door a delivery whose jobs could never run, instead of queueing them to fail after every
   * retry: a key with "." or ".." segments (no store resolves it inside the bucket), a bucket the service has
   * no store for. Registry sources (hf:, mlflow:) are resolved by their registry at scan time.
   */
  function refuseUnrunnable(jobs: readonly ScanJob[]): void {
    for (const { object } of jobs) {
      if (object.key.split('/').some((seg) => seg === '.' || seg === '..') || object.key.includes('\0'))
        throw new HttpError(400, 'bad-key', `object key ${JSON.stringify(object.key)} has "." or ".." segments; nothing was queued`);
      const registry = object.bucket.startsWith('hf:') || object.bucket.startsWith('mlflow:');
      if (!registry && !deps.knowsBucket(object.bucket))
        throw new HttpError(
          403,
          'unknown-bucket',
          `bucket ${object.bucket} is not configured for this service (BUCKETS); nothing was queued`,
        );
    }
  }

  /** Queues the jobs of one verified delivery; a delivery id seen before queues nothing. */
  /**
   * The status record of a job just queued. A job already known (the same object version asked for again:
   * a webhook's, then POST /v1/scans) keeps how and when it first came; only its state says it is queued.
   */
  async function recordQueued(j: ScanJob): Promise<void> {
    const known = await deps.ledger.get(j.id);
    if (known !== null) {
      if (known.state === 'done' || known.state === 'failed') await deps.ledger.put({ ...known, state: 'queued', updatedAt: j.receivedAt });
      return;
    }
    await deps.ledger.put({
      id: j.id,
      state: 'queued',
      object: j.object,
      via: j.via,
      receivedAt: j.receivedAt,
      updatedAt: j.receivedAt,
      attempts: 0,
      verdict: null,
      reason: null,
      outputs: null,
    });
  }

  async function accept(c: Context, source: SourceName, deliveryId: string | null, objects: ObjectRef[]): Promise<Response> {
    const jobs = await jobsFor(objects, source, deliveryId, config, deps.now());
    if (jobs.length === 0) return c.json({ accepted: 0, jobs: [] }, 200);
    refuseUnrunnable(jobs);
    if (
      deliveryId !== null &&
      !(await deps.ledger.firstDelivery(
        source,
        deliveryId,
        jobs.map((j) => j.id),
      ))
    ) {
      return c.json({ accepted: 0, duplicate: true, jobs: await deps.ledger.deliveryJobs(source, deliveryId) }, 200);
    }
    try {
      await deps.enqueue(jobs);
    } catch (err) {
      if (deliveryId !== null) await deps.ledger.forgetDelivery(source, deliveryId);
      deps.onError?.(err);
      throw new HttpError(503, 'queue-unavailable', 'the job queue refused the job; retry the delivery');
    }
    deps.background(Promise.all(jobs.map((j) => recordQueued(j))), c);
    return c.json({ accepted: jobs.length, jobs: jobs.map((j) => j.id) }, 202);
  }

  const raw = async (c: Context) => new Uint8Array(await c.req.arrayBuffer());

  app.get('/health', (c) => c.json({ ok: true }));

  app.post('/webhooks/sns', async (c) => {
    const topics = requireEnabled(config.snsTopics, 'sns');
    const outcome = await handleSns(decoder.decode(await raw(c)), { topics, fetchCert: deps.fetchCert, confirm: deps.confirmSubscription });
    if (outcome.kind !== 'objects') return c.json({ ok: true, [outcome.kind]: true }, 200);
    return accept(c, 'sns', outcome.deliveryId, outcome.objects);
  });

  app.post('/webhooks/eventbridge', async (c) => {
    await verifyToken(
      c.req.header(config.eventbridgeHeader),
      requireEnabled(config.secrets.eventbridge, 'eventbridge'),
      `${config.eventbridgeHeader} header`,
    );
    const event = parseJsonObject(decoder.decode(await raw(c)), 'EventBridge');
    const id = field(event, 'id');
    return accept(c, 'eventbridge', typeof id === 'string' ? id : null, objectsOfEventBridge(event));
  });

  // MinIO probes the endpoint with HEAD before it enables a webhook target (Hono answers HEAD from GET).
  app.get('/webhooks/minio', (c) => {
    requireEnabled(config.secrets.minio, 'minio');
    return c.body(null, 200);
  });
  app.post('/webhooks/minio', async (c) => {
    await verifyToken(bearerToken(c.req.header('authorization')), requireEnabled(config.secrets.minio, 'minio'), 'bearer token');
    const event = parseJsonObject(decoder.decode(await raw(c)), 'MinIO');
    // MinIO has no delivery id; the first record's sequencer names the event.
    const sequencer = field(field(event, 'Records'), '0', 's3', 'object', 'sequencer');
    return accept(
      c,
      'minio',
      typeof sequencer === 'string' ? `${String(field(event, 'Key'))}@${sequencer}` : null,
      objectsOfS3Event(event, 'MinIO event'),
    );
  });

  app.post('/webhooks/huggingface', async (c) => {
    // The Hub sends the secret itself, verbatim (no HMAC): all a constant-time compare can do.
    await verifyToken(
      c.req.header('x-webhook-secret'),
      requireEnabled(config.secrets.huggingface, 'huggingface'),
      'X-Webhook-Secret header',
    );
    return accept(c, 'huggingface', null, objectsOfHubWebhook(parseJsonObject(decoder.decode(await raw(c)), 'Hugging Face')));
  });

  app.post('/webhooks/mlflow', async (c) => {
    const body = await raw(c);
    const id = await verifySignedWebhook(
      c.req.raw.headers,
      body,
      requireEnabled(config.secrets.mlflow, 'mlflow'),
      MLFLOW_WEBHOOK_HEADERS,
      deps.now().getTime() / 1000,
    );
    return accept(c, 'mlflow', id, objectsOfMlflowWebhook(parseJsonObject(decoder.decode(body), 'MLflow')));
  });

  app.post('/webhooks/standard', async (c) => {
    const body = await raw(c);
    const id = await verifySignedWebhook(
      c.req.raw.headers,
      body,
      requireEnabled(config.secrets.standardWebhooks, 'standard'),
      STANDARD_WEBHOOK_HEADERS,
      deps.now().getTime() / 1000,
    );
    return accept(c, 'standard', id, objectsOfStandardWebhook(parseJsonObject(decoder.decode(body), 'Standard Webhooks')));
  });

  app.use('/v1/*', async (c, next) => {
    await verifyToken(bearerToken(c.req.header('authorization')), requireEnabled(config.secrets.api, 'status API'), 'bearer token');
    await next();
  });

  app.get('/v1/scans/:id', async (c) => {
    const record = await deps.ledger.get(c.req.param('id'));
    if (record === null) throw new HttpError(404, 'no-such-scan', `no scan ${c.req.param('id')}`);
    return c.json(record);
  });

  app.get('/v1/scans', async (c) => {
    const key = c.req.query('key');
    if (key === undefined) {
      if (c.req.query('bucket') !== undefined)
        throw new HttpError(400, 'bad-query', 'bucket needs a key; without either, GET /v1/scans lists the most recent scans');
      return c.json(await recentScans(c.req.query('limit'), c.req.query('cursor')));
    }
    const bucket = c.req.query('bucket') ?? config.defaultBucket;
    if (!bucket || !key) throw new HttpError(400, 'bad-query', 'bucket and key are required (bucket may default to DEFAULT_BUCKET)');
    return c.json({ scans: await deps.ledger.byObject(bucket, key) });
  });

  /** One page of the most recent scans: `limit` 1–100 (default 20), `cursor` a previous page's `next`. */
  async function recentScans(limitText: string | undefined, cursorText: string | undefined) {
    const limit = limitText === undefined ? DEFAULT_PAGE : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
      throw new HttpError(400, 'bad-query', `limit must be a whole number from 1 to ${MAX_PAGE}`);
    const cursor = cursorText === undefined ? null : parseCursor(cursorText);
    if (cursorText !== undefined && cursor === null) throw new HttpError(400, 'bad-query', "cursor must be a previous page's next");
    const page = await deps.ledger.recent(limit, cursor);
    return { scans: page.scans, next: page.next ? formatCursor(page.next) : null };
  }

  app.post('/v1/scans', async (c) => {
    const body = parseJsonObject(decoder.decode(await raw(c)), 'POST /v1/scans');
    const bucket = typeof body.bucket === 'string' ? body.bucket : config.defaultBucket;
    const key = body.key;
    if (!bucket || typeof key !== 'string' || key === '')
      throw new HttpError(400, 'bad-payload', 'key (and bucket, unless DEFAULT_BUCKET is set) are required');
    if (!isModelKey(key, config))
      throw new HttpError(
        422,
        'not-a-model',
        `${key} is not a model (${MODEL_FILE_NAMES}), is outside MODEL_PREFIXES, or is one of our outputs`,
      );
    const etag = typeof body.etag === 'string' ? body.etag : undefined;
    return accept(c, 'api', null, [{ bucket, key, ...(etag ? { etag } : {}) }]);
  });

  return app;
}
