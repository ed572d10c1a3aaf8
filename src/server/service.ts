import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Hono } from 'hono';
import { initWasmBackend } from '../core/tfjs/backend.ts';
import { createApp } from '../service/app.ts';
import { configFromEnv, type ServiceConfig } from '../service/config.ts';
import type { JobDeps } from '../service/jobs/run-job.ts';
import { afterScanFor, registriesFor } from '../service/registries.ts';
import { makeScanner, scanOptions } from '../service/scanner.ts';
import type { ObjectStore, StoreResolver } from '../service/storage/object-store.ts';
import { S3Store } from '../service/storage/s3.ts';
import { s3ClientFromEnv } from '../service/storage/s3-client.ts';
import type { CertFetcher } from '../service/verify/sns.ts';
import { TOOL_VERSION } from '../version.ts';
import { cachingCertFetcher, subscriptionConfirmer } from '../service/verify/sns-fetch.ts';
import { JobRunner, type RunnerEvents } from './job-runner.ts';
import { LocalStore } from './local-store.ts';
import { ScanThread } from './scan-thread.ts';
import { SqliteState } from './sqlite-state.ts';
import { nodeWasmPath } from '../node/wasm-path.ts';

export interface NodeService {
  app: Hono;
  config: ServiceConfig;
  state: SqliteState;
  runner: JobRunner;
  stores: StoreResolver;
  close(): void;
}

export interface NodeServiceOptions {
  env: Readonly<Record<string, string | undefined>>;
  events?: RunnerEvents;
  /** Stand-ins for the network in tests (the SNS certificate host is not reachable from CI). */
  fetchCert?: CertFetcher;
  confirmSubscription?: (url: string) => Promise<void>;
  /** The fetch registry sources (the Hub) are read with. */
  fetch?: typeof fetch;
  log?: (line: Record<string, unknown>) => void;
}

function storesFromEnv(env: NodeServiceOptions['env']): StoreResolver {
  const buckets = (env.BUCKETS ?? 'models').split(/[\s,]+/).filter(Boolean);
  const stores = new Map<string, ObjectStore>();
  if ((env.STORAGE ?? 'local') === 's3') {
    const client = s3ClientFromEnv(env);
    for (const b of buckets) stores.set(b, new S3Store(client, b));
  } else if (env.STORAGE === undefined || env.STORAGE === 'local') {
    const root = resolve(env.SHAPGUARD_DATA_DIR ?? '.shapguard/buckets');
    for (const b of buckets) stores.set(b, new LocalStore(root, b));
  } else {
    throw new Error(`STORAGE=${env.STORAGE}: expected local or s3`);
  }
  return (bucket) => stores.get(bucket) ?? null;
}

/**
 * One id per state database: its queue runs each job in one process at a time, so a process restarted on
 * the same database (after a crash) may resume the leases its predecessor held instead of waiting them out.
 */
function nodeWorkerId(statePath: string): string {
  return `node-${hostname()}-${createHash('sha256').update(statePath).digest('hex').slice(0, 10)}`;
}

/**
 * The whole service for Node from environment variables: the Hono app, local-folder or S3 storage, and
 * the SQLite queue with its runner. `npm start` serves it; tests drive it in-process.
 */
export function createNodeService(options: NodeServiceOptions): NodeService {
  const { env } = options;
  const config = configFromEnv(env);
  const statePath = resolve(env.SHAPGUARD_STATE_DB ?? '.shapguard/state.db');
  mkdirSync(dirname(statePath), { recursive: true });
  const state = new SqliteState(statePath);
  const stores = storesFromEnv(env);
  const log = options.log ?? (() => undefined);
  const scanner = makeScanner(config, TOOL_VERSION, () => initWasmBackend({ wasmPath: nodeWasmPath() }), (err) => log({ level: 'error', msg: 'scan internal error', error: String(err) }));
  // Scans run in a worker thread so webhooks are answered while one runs; SHAPGUARD_SCAN_THREAD=off keeps
  // them on the main thread (debugging).
  const thread = env.SHAPGUARD_SCAN_THREAD === 'off' ? null : new ScanThread(scanOptions(config, TOOL_VERSION));
  if (thread) scanner.scan = thread.scan;
  const deps: JobDeps = { config, stores, registry: registriesFor(config, options.fetch ?? fetch, stores), ledger: state, ...scanner, workerId: nodeWorkerId(statePath), now: () => new Date(), ...afterScanFor(config, options.fetch ?? fetch) };
  const runner = new JobRunner(state, deps, Number(env.SHAPGUARD_CONCURRENCY ?? 1), options.events);
  const app = createApp({
    config,
    ledger: state,
    enqueue: async (jobs) => {
      state.enqueue(jobs);
      queueMicrotask(() => runner.kick());
    },
    fetchCert: options.fetchCert ?? cachingCertFetcher(),
    confirmSubscription: options.confirmSubscription ?? subscriptionConfirmer(),
    background: (work) => void work.catch((err: unknown) => log({ level: 'error', msg: 'background write failed', error: String(err) })),
    now: () => new Date(),
    onError: (err) => log({ level: 'error', msg: 'request failed', error: err instanceof Error ? err.message : String(err) }),
  });
  return {
    app,
    config,
    state,
    runner,
    stores,
    close: () => {
      runner.stop();
      void thread?.close();
      state.close();
    },
  };
}
