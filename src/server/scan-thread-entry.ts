import { parentPort } from 'node:worker_threads';
import { initWasmBackend } from '../core/tfjs/backend.ts';
import { scanModel, type ScanOptions } from '../core/scan/scan.ts';
import { nodeWasmPath } from '../node/wasm-path.ts';

/** A scan request from the server's main thread (see scan-thread.ts). */
export interface ScanRequest {
  id: number;
  files: [string, Uint8Array][];
  entry: string;
  options: Omit<ScanOptions, 'onProgress' | 'onInternalError' | 'now' | 'entry'>;
}

// Runs scans off the server's event loop: a scan is seconds of synchronous wasm work, and webhooks must
// still be answered in milliseconds meanwhile.
parentPort!.on('message', async (req: ScanRequest) => {
  try {
    await initWasmBackend({ wasmPath: nodeWasmPath() });
    const { report, repaired, evidence } = await scanModel(new Map(req.files), { ...req.options, entry: req.entry });
    const files = [...(repaired ?? new Map<string, Uint8Array>())];
    parentPort!.postMessage(
      { id: req.id, report, repaired: repaired ? files : null, evidence },
      files.map(([, b]) => b.buffer as ArrayBuffer),
    );
  } catch (err) {
    parentPort!.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) });
  }
});
