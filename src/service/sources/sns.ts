import { HttpError } from '../errors.ts';
import type { ObjectRef } from '../jobs/job.ts';
import { isSnsUrl, parseSnsMessage, verifySnsMessage, type CertFetcher } from '../verify/sns.ts';
import { parseJsonObject } from './parse-json.ts';
import { objectsOfS3Event } from './s3-event.ts';

export interface SnsDeps {
  topics: readonly string[];
  fetchCert: CertFetcher;
  /** GETs a verified SubscribeURL (already checked to be on an SNS host). */
  confirm: (url: string) => Promise<void>;
}

/** What an SNS delivery asks of us. */
export type SnsOutcome = { kind: 'confirmed' | 'ignored' } | { kind: 'objects'; deliveryId: string; objects: ObjectRef[] };

/**
 * Handles an SNS HTTP(S) delivery: verified first (topic, certificate host, signature), then a
 * subscription is confirmed by fetching its SubscribeURL, which must itself be on an SNS host; a
 * notification's Message is the S3 event.
 */
export async function handleSns(body: string, deps: SnsDeps): Promise<SnsOutcome> {
  const m = parseSnsMessage(body);
  await verifySnsMessage(m, deps.topics, deps.fetchCert);
  if (m.Type === 'SubscriptionConfirmation') {
    if (m.SubscribeURL === undefined || !isSnsUrl(m.SubscribeURL))
      throw new HttpError(400, 'bad-subscribe-url', 'SubscribeURL is not an https URL on an SNS host');
    await deps.confirm(m.SubscribeURL);
    return { kind: 'confirmed' };
  }
  if (m.Type === 'UnsubscribeConfirmation') return { kind: 'ignored' };
  return {
    kind: 'objects',
    deliveryId: m.MessageId,
    objects: objectsOfS3Event(parseJsonObject(m.Message, 'SNS Message'), 'S3 event in SNS Message'),
  };
}
