import type { Hono } from 'hono';
import { TOOL_VERSION } from '../version.ts';
import { createApp, type AppDeps } from './app.ts';
import { configFromEnv, type ServiceConfig } from './config.ts';
import type { JobDeps, ScanFn } from './jobs/deps.ts';
import type { Ledger } from './ledger.ts';
import { afterScanFor, registriesFor } from './registries.ts';
import { makeScanner } from './scanner.ts';
import type { ObjectStore, StoreResolver } from './storage/object-store.ts';
import { cachingCertFetcher, subscriptionConfirmer } from './verify/sns-fetch.ts';

/**
 * The service's composition root: every runtime entry (the Worker, the Lambda, the Node server) maps its
 * bindings onto a RuntimeBindings and gets the same job dependencies and the same webhook app from here.
 */

/** What a runtime supplies: its environment, storage, state and platform calls. */
export interface RuntimeBindings {
  /** Variables and secrets (process.env, or the Worker's env). */
  env: Readonly<Record<string, unknown>>;
  /** The configuration, when the entry needed it before composing (parsed from `env` otherwise). */
  config?: ServiceConfig;
  /** The stores of the buckets this runtime serves, by name. */
  stores: ReadonlyMap<string, ObjectStore>;
  /** The service's state, which may live in one of the stores (under the output prefix). */
  ledger: (config: ServiceConfig) => Ledger;
  /** The only fetch registries, callbacks and SNS are called through. */
  fetch: typeof fetch;
  /** Puts tfjs on wasm the runtime's way, before the first scan. */
  initWasm: () => Promise<void>;
  holderId: string;
  /** Whether registry sources (the Hugging Face Hub, MLflow) are read; off where the runtime has no route for them. */
  registries: boolean;
  /** Sees scan bugs, with their stack where the runtime keeps one. */
  onInternalError?: (err: unknown) => void;
  /** Runs scans elsewhere than in this thread (the Node server's scan thread). */
  scan?: ScanFn;
}

export interface Composed {
  config: ServiceConfig;
  deps: JobDeps;
}

/** The configuration and the job dependencies of a runtime. Wrong settings fail here, at start, by name. */
export function composeService(b: RuntimeBindings): Composed {
  const config = b.config ?? configFromEnv(b.env);
  const stores: StoreResolver = (bucket) => b.stores.get(bucket) ?? null;
  const scanner = makeScanner(config, TOOL_VERSION, b.initWasm, b.onInternalError);
  const deps: JobDeps = {
    config,
    stores,
    ...(b.registries ? { registry: registriesFor(config, b.fetch, stores) } : {}),
    ledger: b.ledger(config),
    scan: b.scan ?? scanner.scan,
    errorReport: scanner.errorReport,
    holderId: b.holderId,
    now: () => new Date(),
    ...afterScanFor(config, b.fetch),
  };
  return { config, deps };
}

/** How the webhook app hands work on: the runtime's queue and background work, and its SNS calls. */
export type AppIo = Pick<AppDeps, 'enqueue' | 'background' | 'onError'> & Partial<Pick<AppDeps, 'fetchCert' | 'confirmSubscription'>>;

/** The webhook and status app over a composed service. */
export function webhookApp(service: Composed, fetchFn: typeof fetch, io: AppIo): Hono {
  return createApp({
    config: service.config,
    ledger: service.deps.ledger,
    // Cached per process or isolate: SNS rotates its signing certificates rarely.
    fetchCert: io.fetchCert ?? cachingCertFetcher(fetchFn),
    confirmSubscription: io.confirmSubscription ?? subscriptionConfirmer(fetchFn),
    enqueue: io.enqueue,
    background: io.background,
    now: () => new Date(),
    knowsBucket: (bucket) => service.deps.stores(bucket) !== null,
    ...(io.onError ? { onError: io.onError } : {}),
  });
}
