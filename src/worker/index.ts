import { initWasmBackend } from '../core/backend.ts';
// Workers must import wasm as a precompiled module (wrangler's CompiledWasm rule).
import simd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm';

/** Bindings; the edge-service issue adds R2, Queues and secrets. */
export type Env = Record<string, never>;

/**
 * The part of Cloudflare's ExportedHandler<Env> this entry implements. @cloudflare/workers-types comes
 * with the service, where its global Request/Response types get their own tsconfig (they clash with DOM's).
 */
interface WorkerHandler<E> {
  fetch(request: Request, env: E): Promise<Response>;
}

/**
 * The Worker entry. For now it answers a health check that proves tfjs runs on wasm in this isolate;
 * webhook ingestion and the queue consumer come with the service.
 */
export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== '/health') return Response.json({ error: 'not found' }, { status: 404 });
    try {
      await initWasmBackend({ simdModule: simd });
      return Response.json({ ok: true, backend: 'wasm' });
    } catch (err) {
      return Response.json({ ok: false, error: (err as Error).message }, { status: 500 });
    }
  },
} satisfies WorkerHandler<Env>;
