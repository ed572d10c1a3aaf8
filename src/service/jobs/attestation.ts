import { buildStatement, importEd25519, keyId, publicKeyOf, signStatement, type Envelope } from '../../core/output/attest.ts';
import type { ScanReport } from '../../core/output/report.ts';
import type { ObjectStore } from '../storage/object-store.ts';

/** Signs a report's in-toto statement; bound to the configured key. */
export type AttestationSigner = (report: ScanReport, reportBytes: Uint8Array) => Promise<Envelope>;

/**
 * A signer from SHAPGUARD_SIGNING_KEY (an Ed25519 PKCS#8 PEM), the same statement and DSSE envelope the
 * CLI's --sign-key writes (WebCrypto, so the Worker signs too). The key is imported once, on first use;
 * a key that is not an Ed25519 private key fails every job that would be signed, by name.
 */
export function attestationSigner(pem: string): AttestationSigner {
  let ready: Promise<{ key: CryptoKey; id: string }> | undefined;
  return async (report, reportBytes) => {
    ready ??= (async () => {
      const { key, kind } = await importEd25519(pem);
      if (kind !== 'private') throw new Error('SHAPGUARD_SIGNING_KEY must be an Ed25519 private key (PKCS#8 PEM)');
      return { key, id: await keyId(await publicKeyOf(key)) };
    })();
    const { key, id } = await ready;
    return signStatement(await buildStatement(report, reportBytes, report.repair?.output?.digest ?? null), key, id);
  };
}

/**
 * Writes attestation.dsse.json for the report stored in `folder` unless it is there: after the report
 * (which is the commit point), and again by any later delivery that finds it missing after a crash.
 */
export async function ensureAttestation(store: ObjectStore, folder: string, reportBytes: Uint8Array, report: ScanReport, sign: AttestationSigner): Promise<void> {
  const key = `${folder}attestation.dsse.json`;
  if ((await store.head(key)) !== null) return;
  await store.put(key, JSON.stringify(await sign(report, reportBytes), null, 2) + '\n', { contentType: 'application/json' });
}
