import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ScanReport } from '../core/output/report.ts';
import type { TriggerEvidence } from '../core/output/report.ts';
import type { ScanOptions } from '../core/scan/scan.ts';
import type { ScanFn } from '../service/jobs/deps.ts';
import type { ScanRequest } from './scan-thread-entry.ts';

type Reply =
  { id: number; report: ScanReport; repaired: [string, Uint8Array][] | null; evidence: TriggerEvidence[] } | { id: number; error: string };

/** The bundled worker script: beside this file in dist/, else in dist/ from the sources or a script bundle. */
function workerScript(): string {
  for (const rel of ['./scan-thread-entry.mjs', '../../dist/scan-thread-entry.mjs', '../../../dist/scan-thread-entry.mjs']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('dist/scan-thread-entry.mjs is missing: run `npm run build`');
}

/**
 * Scans in a worker thread, one at a time, so the server's event loop keeps answering webhooks within
 * milliseconds during a scan. The thread starts on the first scan and is replaced if it dies.
 */
export class ScanThread {
  private worker: Worker | undefined;
  private next = 1;
  private pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

  constructor(private readonly options: Omit<ScanOptions, 'entry'>) {}

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(workerScript());
    worker.on('message', (reply: Reply) => {
      this.pending.get(reply.id)?.resolve(reply);
      this.pending.delete(reply.id);
    });
    const fail = (err: Error) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.worker = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`scan thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  readonly scan: ScanFn = async (files, entry, cleanSample) => {
    const id = this.next++;
    // Functions cannot cross to the thread; the service sets none of them.
    const options: ScanRequest['options'] = { ...this.options, ...(cleanSample ? { cleanSample } : {}) };
    delete (options as ScanOptions).onProgress;
    delete (options as ScanOptions).onInternalError;
    delete (options as ScanOptions).now;
    const request: ScanRequest = { id, files: [...files], entry, options };
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ensure().postMessage(request);
    });
    if ('error' in reply) throw new Error(`scan thread: ${reply.error}`);
    return { report: reply.report, repaired: reply.repaired ? new Map(reply.repaired) : null, evidence: reply.evidence };
  };

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = undefined;
  }
}
