import { sign } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A throwaway RSA key and self-signed certificate made with the openssl CLI, standing in for SNS's. */
export function makeSigningCert(dir: string): { keyPem: string; certPem: string } {
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=sns.amazonaws.com',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'), certPem: readFileSync(join(dir, 'cert.pem'), 'utf8') };
}

/**
 * Signs an SNS message as SNS does (AWS docs, "Verifying the signatures of Amazon SNS messages"): the
 * listed fields as "Name\nvalue\n" in byte order, RSA with SHA1 (version 1) or SHA256 (version 2).
 */
export function signSns(message: Record<string, string>, keyPem: string, version: '1' | '2' = '1'): Record<string, string> {
  const fields =
    message.Type === 'Notification'
      ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  const text = fields
    .filter((f) => message[f] !== undefined)
    .map((f) => `${f}\n${message[f]}\n`)
    .join('');
  const signature = sign(version === '1' ? 'sha1' : 'sha256', Buffer.from(text), keyPem).toString('base64');
  return { ...message, SignatureVersion: version, Signature: signature };
}

export const TOPIC = 'arn:aws:sns:us-east-1:123456789012:model-uploads';
export const CERT_URL = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem';

/** An S3 ObjectCreated event for one key, as S3 writes it (key form-URL-encoded). */
export function s3Event(bucket: string, key: string, etag: string): string {
  const encoded = encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
  return JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        eventTime: new Date().toISOString(),
        s3: { bucket: { name: bucket }, object: { key: encoded, size: 1, eTag: etag, sequencer: '0061A1B2C3D4E5F6' } },
      },
    ],
  });
}

/** A signed SNS Notification carrying an S3 event. */
export function snsNotification(keyPem: string, s3: string, overrides: Record<string, string> = {}, version: '1' | '2' = '1'): string {
  const m = {
    Type: 'Notification',
    MessageId: `mid-${Math.random().toString(36).slice(2)}`,
    TopicArn: TOPIC,
    Subject: 'Amazon S3 Notification',
    Message: s3,
    Timestamp: new Date().toISOString(),
    SigningCertURL: CERT_URL,
    UnsubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe',
    ...overrides,
  };
  return JSON.stringify(signSns(m, keyPem, version));
}
