import { TransientError } from './errors.ts';
import type { Notifier, VerdictMark } from './jobs/mark.ts';
import { signWebhook } from './verify/signed-webhook.ts';

/**
 * Posts `scan.completed` with the verdict mark to every configured URL, signed with CALLBACK_SECRET. The
 * id is the scan and version, the same on every resend, so receivers dedupe as the spec says. Any failure
 * throws TransientError: the job is retried and the callback sent again (at least once).
 */
export function callbackNotifier(urls: readonly string[], secret: string, fetchFn: typeof fetch, now: () => Date): Notifier {
  return async (mark: VerdictMark) => {
    const id = `${mark.scanId}.${mark.version}`.replace(/[^\w.-]/g, '_');
    const timestamp = Math.floor(now().getTime() / 1000);
    const body = JSON.stringify({ type: 'scan.completed', timestamp: now().toISOString(), data: mark });
    const signature = await signWebhook(secret, id, timestamp, body);
    for (const url of urls) {
      let status: number;
      try {
        const res = await fetchFn(url, {
          method: 'POST',
          body,
          redirect: 'error',
          signal: AbortSignal.timeout(10_000),
          headers: {
            'content-type': 'application/json',
            'webhook-id': id,
            'webhook-timestamp': String(timestamp),
            'webhook-signature': signature,
          },
        });
        status = res.status;
        await res.body?.cancel();
      } catch (err) {
        throw new TransientError(`callback to ${new URL(url).host} failed: ${(err as Error).message}`, { cause: err });
      }
      if (status < 200 || status >= 300) throw new TransientError(`callback to ${new URL(url).host} answered ${status}`);
    }
  };
}
