import { fromBase64 } from '../../core/util/encoding.ts';
import { utf8 } from '../bytes.ts';
import { HttpError } from '../errors.ts';
import { pemToDer, spkiOfCertificate } from './der.ts';

/** The fields of an SNS HTTP(S) delivery that verification and routing read. */
export interface SnsMessage {
  Type: 'Notification' | 'SubscriptionConfirmation' | 'UnsubscribeConfirmation';
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  SignatureVersion: string;
  Signature: string;
  SigningCertURL: string;
  Subject?: string;
  SubscribeURL?: string;
  Token?: string;
}

/** SNS signs with certificates served from its own regional hosts only (also the China partition). */
const SNS_HOST = /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;

/** True for an https URL on an SNS host: the only place a cert or a SubscribeURL may be fetched from. */
export function isSnsUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    return url.protocol === 'https:' && url.port === '' && url.username === '' && SNS_HOST.test(url.hostname);
  } catch {
    return false;
  }
}

/** Parses and shape-checks an SNS body; throws 400 on anything else. */
export function parseSnsMessage(body: string): SnsMessage {
  let m: unknown;
  try {
    m = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'bad-json', 'SNS body is not JSON');
  }
  const r = m as Record<string, unknown>;
  const need = ['Type', 'MessageId', 'TopicArn', 'Timestamp', 'SignatureVersion', 'Signature', 'SigningCertURL'];
  const missing = need.filter((k) => typeof r[k] !== 'string');
  if (missing.length > 0) throw new HttpError(400, 'bad-sns-message', `SNS message lacks ${missing.join(', ')}`);
  if (!['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'].includes(r.Type as string)) {
    throw new HttpError(400, 'bad-sns-message', `SNS message type ${String(r.Type)} is not handled`);
  }
  return m as SnsMessage;
}

/** The string SNS signs (AWS docs, "Verifying the signatures of Amazon SNS messages"). */
export function snsStringToSign(m: SnsMessage): string {
  const keys =
    m.Type === 'Notification'
      ? ['Message', 'MessageId', ...(m.Subject !== undefined ? ['Subject'] : []), 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return keys.map((k) => `${k}\n${String((m as unknown as Record<string, unknown>)[k] ?? '')}\n`).join('');
}

/** Fetches a PEM certificate; injected so the cache and the network client belong to the runtime. */
export type CertFetcher = (url: string) => Promise<string>;

/**
 * Verifies an SNS delivery: topic on the allow-list, certificate URL on an SNS host (checked before any
 * fetch), then the RSA signature (version 1 SHA1withRSA, version 2 SHA256withRSA) over the canonical string.
 */
export async function verifySnsMessage(m: SnsMessage, allowedTopics: readonly string[], fetchCert: CertFetcher): Promise<void> {
  if (!allowedTopics.includes(m.TopicArn)) throw new HttpError(403, 'topic-not-allowed', `topic ${m.TopicArn} is not on the allow-list`);
  if (!isSnsUrl(m.SigningCertURL)) throw new HttpError(401, 'bad-cert-url', 'SigningCertURL is not an https URL on an SNS host');
  const hash = m.SignatureVersion === '1' ? 'SHA-1' : m.SignatureVersion === '2' ? 'SHA-256' : null;
  if (hash === null) throw new HttpError(401, 'bad-signature', `SignatureVersion ${m.SignatureVersion} is not 1 or 2`);
  const signature = fromBase64(m.Signature);
  if (signature === null) throw new HttpError(401, 'bad-signature', 'Signature is not base64');
  let key: CryptoKey;
  try {
    const spki = spkiOfCertificate(pemToDer(await fetchCert(m.SigningCertURL)));
    key = await crypto.subtle.importKey('spki', spki, { name: 'RSASSA-PKCS1-v1_5', hash }, false, ['verify']);
  } catch (err) {
    throw new HttpError(401, 'bad-cert', `signing certificate unusable: ${(err as Error).message}`);
  }
  if (!(await crypto.subtle.verify('RSASSA-PKCS1-v1_5', key, signature, utf8(snsStringToSign(m))))) {
    throw new HttpError(401, 'bad-signature', 'SNS signature does not match the message');
  }
}
