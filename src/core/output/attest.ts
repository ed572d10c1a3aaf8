import { sha256Hex, type ModelDigest } from '../util/digest.ts';
import { toBase64 } from '../util/encoding.ts';
import { ShapguardError } from '../errors.ts';
import type { ScanReport } from './report.ts';

/** in-toto Statement v1 with the test-result predicate. */
export interface Statement {
  _type: 'https://in-toto.io/Statement/v1';
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: 'https://in-toto.io/attestation/test-result/v0.1';
  predicate: {
    result: 'PASSED' | 'FAILED' | 'WARNED';
    configuration: { name: string; digest: { sha256: string }; annotations: Record<string, unknown> }[];
    passedTests: string[];
    warnedTests: string[];
    failedTests: string[];
  };
}

export interface Envelope {
  payloadType: 'application/vnd.in-toto+json';
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

const PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const encoder = new TextEncoder();

function unb64(text: string, what: string): Uint8Array {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    throw new ShapguardError('input', `the attestation's ${what} is not valid base64`);
  }
}

/** DSSE's pre-authentication encoding: what is actually signed, binding the payload to its type. */
function pae(payload: Uint8Array): Uint8Array {
  const head = encoder.encode(`DSSEv1 ${encoder.encode(PAYLOAD_TYPE).length} ${PAYLOAD_TYPE} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/**
 * The statement a deployment step can check: its subjects are the input model's files, report.json and
 * the repaired model's files; PASSED only for a clean verdict. The configuration (every threshold, seed
 * and version) is carried with its digest.
 */
export async function buildStatement(report: ScanReport, reportBytes: Uint8Array, repaired: ModelDigest | null): Promise<Statement> {
  const subject: Statement['subject'] = [];
  for (const f of report.input?.digest.files ?? []) subject.push({ name: `model/${f.path}`, digest: { sha256: f.sha256 } });
  subject.push({ name: 'report.json', digest: { sha256: await sha256Hex(reportBytes) } });
  for (const f of repaired?.files ?? []) subject.push({ name: `repaired/${f.path}`, digest: { sha256: f.sha256 } });
  const config = encoder.encode(JSON.stringify(report.config));
  const clean = report.verdict === 'clean';
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject,
    predicateType: 'https://in-toto.io/attestation/test-result/v0.1',
    predicate: {
      result: clean ? 'PASSED' : report.verdict === 'incomplete' ? 'WARNED' : 'FAILED',
      configuration: [
        {
          name: 'shapguard-scan-config',
          digest: { sha256: await sha256Hex(config) },
          annotations: {
            verdict: report.verdict,
            reason: report.reason,
            tool: report.tool,
            libraries: report.libraries,
            config: report.config,
            flagged: report.detection?.flagged ?? [],
            repair: report.repair?.status ?? null,
          },
        },
      ],
      passedTests: clean ? ['shapguard-backdoor-scan'] : [],
      warnedTests: report.verdict === 'incomplete' ? ['shapguard-backdoor-scan'] : [],
      failedTests: !clean && report.verdict !== 'incomplete' ? ['shapguard-backdoor-scan'] : [],
    },
  };
}

/** The public half of an Ed25519 private key (through its JWK, which carries both). */
export async function publicKeyOf(privateKey: CryptoKey): Promise<CryptoKey> {
  const jwk = await crypto.subtle.exportKey('jwk', privateKey);
  return crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, { name: 'Ed25519' }, true, ['verify']);
}

/** The key id: sha256 of the raw public key, so a verifier can tell which key signed. */
export async function keyId(publicKey: CryptoKey): Promise<string> {
  return sha256Hex(new Uint8Array(await crypto.subtle.exportKey('raw', publicKey)));
}

/** Signs the statement as a DSSE envelope with an Ed25519 key (WebCrypto: Node and workerd alike). */
export async function signStatement(statement: Statement, privateKey: CryptoKey, keyid: string): Promise<Envelope> {
  const payload = encoder.encode(JSON.stringify(statement));
  const sig = new Uint8Array(await crypto.subtle.sign('Ed25519', privateKey, new Uint8Array(pae(payload))));
  return { payloadType: PAYLOAD_TYPE, payload: toBase64(payload), signatures: [{ keyid, sig: toBase64(sig) }] };
}

/** Checks the envelope's signature with the public key and returns the statement it carries. */
export async function verifyEnvelope(envelope: unknown, publicKey: CryptoKey): Promise<Statement> {
  const e = envelope as Partial<Envelope> | null;
  if (!e || e.payloadType !== PAYLOAD_TYPE || typeof e.payload !== 'string' || !Array.isArray(e.signatures) || e.signatures.length === 0) {
    throw new ShapguardError('input', 'the attestation is not a DSSE envelope with an in-toto payload and a signature');
  }
  const payload = unb64(e.payload, 'payload');
  let ok = false;
  for (const s of e.signatures) {
    if (typeof s?.sig !== 'string') continue;
    if (await crypto.subtle.verify('Ed25519', publicKey, new Uint8Array(unb64(s.sig, 'signature')), new Uint8Array(pae(payload))))
      ok = true;
  }
  if (!ok) throw new ShapguardError('input', 'no signature in the attestation verifies with this key');
  try {
    return JSON.parse(new TextDecoder().decode(payload)) as Statement;
  } catch {
    throw new ShapguardError('input', 'the attestation payload is not JSON');
  }
}

/** Imports an Ed25519 key from PEM (PKCS#8 private or SPKI public). */
export async function importEd25519(pem: string): Promise<{ key: CryptoKey; kind: 'private' | 'public' }> {
  const m = /-----BEGIN (PRIVATE|PUBLIC) KEY-----([\s\S]+?)-----END \1 KEY-----/.exec(pem);
  if (!m) throw new ShapguardError('input', 'the key is not a PEM "PRIVATE KEY" (PKCS#8) or "PUBLIC KEY" (SPKI) block');
  const der = unb64(m[2]!.replace(/\s+/g, ''), 'key');
  const kind = m[1] === 'PRIVATE' ? 'private' : 'public';
  try {
    const key = await crypto.subtle.importKey(
      kind === 'private' ? 'pkcs8' : 'spki',
      new Uint8Array(der),
      { name: 'Ed25519' },
      true,
      kind === 'private' ? ['sign'] : ['verify'],
    );
    return { key, kind };
  } catch (err) {
    throw new ShapguardError('input', `the key is not an Ed25519 ${kind} key: ${(err as Error).message}`);
  }
}

/** Signs a report's in-toto statement: the one signer the CLI's --sign-key and the service's key share. */
export type AttestationSigner = (report: ScanReport, reportBytes: Uint8Array) => Promise<Envelope>;

/**
 * A signer from an Ed25519 private key in PEM (PKCS#8). The key is imported on first use and kept; a key
 * that is not an Ed25519 private key fails every signature, naming `keyName` (a flag or a variable).
 */
export function attestationSigner(pem: string, keyName: string): AttestationSigner {
  let ready: Promise<{ key: CryptoKey; id: string }> | undefined;
  return async (report, reportBytes) => {
    ready ??= (async () => {
      const { key, kind } = await importEd25519(pem);
      if (kind !== 'private') throw new ShapguardError('input', `${keyName} must be an Ed25519 private key (PKCS#8 PEM)`);
      return { key, id: await keyId(await publicKeyOf(key)) };
    })();
    const { key, id } = await ready;
    return signStatement(await buildStatement(report, reportBytes, report.repair?.output?.digest ?? null), key, id);
  };
}
