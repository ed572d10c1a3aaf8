import type { AttestationSigner } from '../../core/output/attest.ts';
import type { ScanReport } from '../../core/output/report.ts';
import type { ObjectStore } from '../storage/object-store.ts';

/**
 * Writes attestation.dsse.json for the report stored in `folder` unless it is there: after the report
 * (which is the commit point), and again by any later delivery that finds it missing after a crash.
 */
export async function ensureAttestation(
  store: ObjectStore,
  folder: string,
  reportBytes: Uint8Array,
  report: ScanReport,
  sign: AttestationSigner,
): Promise<void> {
  const key = `${folder}attestation.dsse.json`;
  if ((await store.head(key)) !== null) return;
  await store.put(key, JSON.stringify(await sign(report, reportBytes), null, 2) + '\n', { contentType: 'application/json' });
}
