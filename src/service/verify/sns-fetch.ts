import type { CertFetcher } from './sns.ts';

/**
 * Fetches SNS signing certificates with a per-URL cache (SNS rotates them rarely) and a timeout, so a
 * slow certificate host cannot hold webhook requests open. Only called for URLs already checked to be on
 * an SNS host.
 */
export function cachingCertFetcher(fetchFn: typeof fetch = fetch, timeoutMs = 5000): CertFetcher {
  const cache = new Map<string, Promise<string>>();
  return (url) => {
    let pem = cache.get(url);
    if (pem === undefined) {
      pem = fetchFn(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' }).then(async (r) => {
        if (!r.ok) throw new Error(`certificate fetch answered ${r.status}`);
        return r.text();
      });
      pem.catch(() => cache.delete(url));
      cache.set(url, pem);
    }
    return pem;
  };
}

/** GETs an SNS SubscribeURL (already checked to be on an SNS host); a non-2xx answer is an error. */
export function subscriptionConfirmer(fetchFn: typeof fetch = fetch, timeoutMs = 5000): (url: string) => Promise<void> {
  return async (url) => {
    const r = await fetchFn(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!r.ok) throw new Error(`SubscribeURL answered ${r.status}`);
  };
}
