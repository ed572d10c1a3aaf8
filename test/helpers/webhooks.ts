import { createHmac, randomBytes } from 'node:crypto';

/** A Standard Webhooks secret as senders issue them. */
export function newWhsec(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/**
 * Signs a delivery the way the Standard Webhooks reference libraries do (HMAC-SHA256 over
 * "id.timestamp.body", key = base64-decoded secret), written here with node:crypto, independently of the
 * service's Web Crypto verifier.
 */
export function signStandard(secret: string, id: string, timestamp: number, body: string): string {
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** Headers of a signed Standard Webhooks delivery. */
export function standardHeaders(
  secret: string,
  id: string,
  body: string,
  timestamp = Math.floor(Date.now() / 1000),
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signStandard(secret, id, timestamp, body),
  };
}

/** A `model.uploaded` Standard Webhooks payload. */
export function modelUploaded(bucket: string, key: string, etag?: string): string {
  return JSON.stringify({ type: 'model.uploaded', timestamp: new Date().toISOString(), data: { bucket, key, ...(etag ? { etag } : {}) } });
}
