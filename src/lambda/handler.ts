import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initWasmBackend } from '../core/tfjs/backend.ts';
import { nodeWasmPath } from '../node/wasm-path.ts';
import { composeService } from '../service/compose.ts';
import type { JobDeps } from '../service/jobs/deps.ts';
import { deliver } from '../service/jobs/deliver.ts';
import { jobsFor, type ObjectRef, type ScanJob } from '../service/jobs/job.ts';
import { ObjectLedger } from '../service/ledger.ts';
import { field } from '../service/sources/parse-json.ts';
import { objectsOfS3Event } from '../service/sources/s3-event.ts';
import { bucketNames, s3Stores } from '../service/storage/s3-client.ts';

/** An S3 → Lambda event, or an SQS → Lambda batch whose bodies are S3 events (raw, or in an SNS envelope). */
export interface LambdaEvent {
  Records: Record<string, unknown>[];
}

/** SQS partial batch response: only the failed messages are redelivered (and dead-lettered by the redrive policy). */
export interface BatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** The tfjs .wasm files: beside the bundle in a deployed Lambda, else in node_modules. */
function wasmPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return existsSync(join(here, 'tfjs-backend-wasm-simd.wasm')) ? `${here}/` : nodeWasmPath();
}

/** Built from the environment (docs/service.md's variables; storage is always S3 here, no registry sources). */
function depsFromEnv(env: Readonly<Record<string, string | undefined>>): JobDeps {
  const stores = s3Stores(env, bucketNames(env.BUCKETS));
  const first = [...stores.values()][0];
  if (first === undefined) throw new Error('BUCKETS names no bucket');
  return composeService({
    env,
    stores,
    // The service's state (scan records) lives beside the outputs, in the first bucket.
    ledger: (config) => new ObjectLedger(first, `${config.outputPrefix}.state/`),
    fetch,
    initWasm: () => initWasmBackend({ wasmPath: wasmPath() }),
    holderId: `lambda-${env.AWS_LAMBDA_LOG_STREAM_NAME ?? crypto.randomUUID()}`,
    registries: false,
  }).deps;
}

/** The S3 objects of one SQS message body: an S3 event, or one wrapped in an SNS envelope. */
function objectsOfSqsBody(body: string): ObjectRef[] {
  const parsed = JSON.parse(body) as unknown;
  const message = field(parsed, 'Type') === 'Notification' ? JSON.parse(field(parsed, 'Message') as string) : parsed;
  return objectsOfS3Event(message, 'S3 event in SQS message');
}

/**
 * A Lambda handler for S3 → Lambda (invoked asynchronously; a thrown error makes Lambda retry, then its
 * on-failure destination) and S3 → SQS → Lambda (partial batch response). The same parsers and job code
 * as the Worker and the Node server; the scan runs in the Lambda.
 */
export function createHandler(env: Readonly<Record<string, string | undefined>>): (event: LambdaEvent) => Promise<BatchResponse> {
  const d = depsFromEnv(env);
  return (event) => handle(event, d);
}

let fromProcess: ((event: LambdaEvent) => Promise<BatchResponse>) | undefined;

/** The deployed entry (`index.handler`), configured by the function's environment once per container. */
export function handler(event: LambdaEvent): Promise<BatchResponse> {
  fromProcess ??= createHandler(process.env);
  return fromProcess(event);
}

async function handle(event: LambdaEvent, d: JobDeps): Promise<BatchResponse> {
  const failures: { itemIdentifier: string }[] = [];
  const s3Records = event.Records.filter((r) => r.eventSource === 'aws:s3');
  if (s3Records.length > 0) {
    const jobs = await jobsFor(objectsOfS3Event({ Records: s3Records }, 'S3 event'), 'lambda', null, d.config, new Date());
    for (const job of jobs) {
      const decision = await deliver(job, 1, { ...d, config: { ...d.config, maxAttempts: Number.MAX_SAFE_INTEGER } });
      if (!decision.ack) throw new Error(`${job.id}: ${decision.error}`);
    }
  }
  for (const record of event.Records.filter((r) => r.eventSource === 'aws:sqs')) {
    const messageId = String(record.messageId);
    const attempt = Number(field(record, 'attributes', 'ApproximateReceiveCount') ?? 1);
    let jobs: ScanJob[];
    try {
      jobs = await jobsFor(objectsOfSqsBody(String(record.body)), 'lambda', messageId, d.config, new Date());
    } catch {
      continue; // not an S3 event: redelivering it cannot help
    }
    for (const job of jobs) {
      const decision = await deliver(job, attempt, d);
      if (!decision.ack && !failures.some((f) => f.itemIdentifier === messageId)) failures.push({ itemIdentifier: messageId });
    }
  }
  return { batchItemFailures: failures };
}
