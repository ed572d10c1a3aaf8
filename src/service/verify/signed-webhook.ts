import { fromBase64, toBase64 } from '../../core/util/encoding.ts';
import { utf8 } from '../bytes.ts';
import { HttpError } from '../errors.ts';

/** Header names of a "id.timestamp.body" HMAC-SHA256 scheme; Standard Webhooks and MLflow differ only here. */
export interface SignedWebhookHeaders {
  id: string;
  timestamp: string;
  signature: string;
}

export const STANDARD_WEBHOOK_HEADERS: SignedWebhookHeaders = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
};
export const MLFLOW_WEBHOOK_HEADERS: SignedWebhookHeaders = {
  id: 'x-mlflow-delivery-id',
  timestamp: 'x-mlflow-timestamp',
  signature: 'x-mlflow-signature',
};

/** How far a delivery's timestamp may be from our clock, both ways (the Standard Webhooks default). */
export const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;

/**
 * The key bytes of a secret: Standard Webhooks secrets are "whsec_<base64>" and the key is the decoded
 * part; any other secret (MLflow's) is used as its UTF-8 bytes.
 */
export function secretKeyBytes(secret: string): Uint8Array<ArrayBuffer> {
  if (secret.startsWith('whsec_')) {
    const key = fromBase64(secret.slice('whsec_'.length));
    if (key === null || key.length === 0) throw new Error('webhook secret "whsec_…" does not hold base64');
    return key;
  }
  return utf8(secret);
}

/** What the scheme signs: `${id}.${timestamp}.` followed by the raw body. */
function signedContent(id: string, timestamp: string, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = utf8(`${id}.${timestamp}.`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

function hmacKey(secret: string, usage: 'sign' | 'verify'): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', secretKeyBytes(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [usage]);
}

/**
 * Signs a delivery the same way ("v1,<base64 HMAC-SHA256>"), for our own scan.completed callbacks, so a
 * receiver verifies them with any Standard Webhooks library.
 */
export async function signWebhook(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret, 'sign'), signedContent(id, String(timestamp), utf8(body)));
  return `v1,${toBase64(new Uint8Array(mac))}`;
}

/**
 * Verifies a delivery signed as HMAC-SHA256(secret, `${id}.${timestamp}.${rawBody}`), its signature
 * header a space-separated list of "v1,<base64>" so a sender can sign with old and new keys during a
 * rotation; any one valid signature under any one configured secret is enough. Runs before the body is
 * parsed; the timestamp bounds replays to the tolerance window (the caller dedupes ids inside it).
 * Returns the delivery id.
 */
export async function verifySignedWebhook(
  headers: Headers,
  rawBody: Uint8Array,
  secrets: readonly string[],
  names: SignedWebhookHeaders,
  nowSeconds: number,
): Promise<string> {
  const id = headers.get(names.id);
  const timestamp = headers.get(names.timestamp);
  const signature = headers.get(names.signature);
  if (!id || !timestamp || !signature) {
    throw new HttpError(
      401,
      'missing-signature',
      `missing ${[!id && names.id, !timestamp && names.timestamp, !signature && names.signature].filter(Boolean).join(', ')}`,
    );
  }
  if (!/^\d{1,12}$/.test(timestamp)) throw new HttpError(401, 'bad-timestamp', `${names.timestamp} is not a Unix time in seconds`);
  const skew = nowSeconds - Number(timestamp);
  if (Math.abs(skew) > TIMESTAMP_TOLERANCE_SECONDS) {
    throw new HttpError(
      401,
      'stale-timestamp',
      `${names.timestamp} is ${Math.round(Math.abs(skew))} s ${skew > 0 ? 'old' : 'in the future'} (tolerance ${TIMESTAMP_TOLERANCE_SECONDS} s)`,
    );
  }
  const signed = signedContent(id, timestamp, rawBody);
  const candidates = signature.split(' ').flatMap((part) => {
    const [version, value] = part.split(',', 2);
    const bytes = version === 'v1' && value ? fromBase64(value) : null;
    return bytes && bytes.length === 32 ? [bytes] : [];
  });
  if (candidates.length === 0) throw new HttpError(401, 'bad-signature', `${names.signature} holds no v1 signature`);
  for (const secret of secrets) {
    const key = await hmacKey(secret, 'verify');
    for (const candidate of candidates) {
      // subtle.verify compares in constant time.
      if (await crypto.subtle.verify('HMAC', key, candidate, signed)) return id;
    }
  }
  throw new HttpError(401, 'bad-signature', 'no signature matches the body under the configured secrets');
}
