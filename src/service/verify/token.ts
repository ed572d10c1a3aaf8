import { secretsEqual } from '../bytes.ts';
import { HttpError } from '../errors.ts';

/**
 * Checks a shared-secret header (Hugging Face X-Webhook-Secret, an EventBridge API-key header, MinIO's
 * bearer token). These schemes carry no signature over the body, so the only defence is an exact match in
 * constant time, over TLS.
 */
export async function verifyToken(presented: string | null | undefined, expected: string, what: string): Promise<void> {
  if (presented === null || presented === undefined || presented === '') throw new HttpError(401, 'missing-credentials', `missing ${what}`);
  if (!(await secretsEqual(presented, expected))) throw new HttpError(401, 'bad-credentials', `${what} does not match`);
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | null | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1]! : null;
}
