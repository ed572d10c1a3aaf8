import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Hono } from 'hono';
import { initWasmBackend } from '../core/tfjs/backend.ts';
import { nodeWasmPath } from '../node/wasm-path.ts';
import { composeService, webhookApp } from '../service/compose.ts';
import { configFromEnv, type ServiceConfig } from '../service/config.ts';
import { scanOptions } from '../service/scanner.ts';
import type { ObjectStore, StoreResolver } from '../service/storage/object-store.ts';
import { bucketNames, s3Stores } from '../service/storage/s3-client.ts';
import type { CertFetcher } from '../service/verify/sns.ts';
import { cachingCertFetcher, subscriptionConfirmer } from '../service/verify/sns-fetch.ts';
import { TOOL_VERSION } from '../version.ts';
import { JobRunner, type RunnerEvents } from './job-runner.ts';
import { LocalStore } from './local-store.ts';
import { ScanThread } from './scan-thread.ts';
import { SqliteState } from './sqlite-state.ts';

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

/** The buckets the server serves (BUCKETS), as folders under SHAPGUARD_DATA_DIR or through S3 (STORAGE=s3). */
function storesFromEnv(env: NodeServiceOptions['env']): Map<string, ObjectStore> {
  const buckets = bucketNames(env.BUCKETS ?? 'models');
  const storage = env.STORAGE ?? 'local';
  if (storage === 's3') return s3Stores(env, buckets);
  if (storage !== 'local') throw new Error(`STORAGE=${env.STORAGE}: expected local or s3`);
  const root = resolve(env.SHAPGUARD_DATA_DIR ?? '.shapguard/buckets');
  return new Map(buckets.map((b) => [b, new LocalStore(root, b)]));
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
  // Wrong settings fail first, before anything is opened.
  const config = configFromEnv(env);
  const statePath = resolve(env.SHAPGUARD_STATE_DB ?? '.shapguard/state.db');
  mkdirSync(dirname(statePath), { recursive: true });
  const state = new SqliteState(statePath);
  const log = options.log ?? (() => undefined);
  const fetchFn = options.fetch ?? fetch;
  // Scans run in a worker thread so webhooks are answered while one runs; SHAPGUARD_SCAN_THREAD=off keeps
  // them on the main thread (debugging).
  const thread = env.SHAPGUARD_SCAN_THREAD === 'off' ? null : new ScanThread(scanOptions(config, TOOL_VERSION));
  const stores = storesFromEnv(env);
  const service = composeService({
    env,
    config,
    stores,
    ledger: () => state,
    fetch: fetchFn,
    initWasm: () => initWasmBackend({ wasmPath: nodeWasmPath() }),
    holderId: nodeWorkerId(statePath),
    registries: true,
    onInternalError: (err) => log({ level: 'error', msg: 'scan internal error', error: String(err) }),
    ...(thread ? { scan: thread.scan } : {}),
  });
  const runner = new JobRunner(state, service.deps, Number(env.SHAPGUARD_CONCURRENCY ?? 1), options.events);
  const app = webhookApp(service, fetchFn, {
    enqueue: async (jobs) => {
      state.enqueue(jobs);
      queueMicrotask(() => runner.kick());
    },
    // The network stand-ins of tests, else the platform's own (never the registries' fetch).
    fetchCert: options.fetchCert ?? cachingCertFetcher(),
    confirmSubscription: options.confirmSubscription ?? subscriptionConfirmer(),
    background: (work) => void work.catch((err: unknown) => log({ level: 'error', msg: 'background write failed', error: String(err) })),
    onError: (err) => log({ level: 'error', msg: 'request failed', error: err instanceof Error ? err.message : String(err) }),
  });
  return {
    app,
    config: service.config,
    state,
    runner,
    stores: service.deps.stores,
    close: () => {
      runner.stop();
      void thread?.close();
      state.close();
    },
  };
}
