import type { ServiceConfig } from '../config.ts';
import { NotReadyError } from '../errors.ts';
import type { ObjectStore } from '../storage/object-store.ts';

/**
 * The lease protocol: one worker at a time scans an object version. The lease is an object beside the
 * outputs; taking it is a create-only write, or the replacement by If-Match of an expired one (or of our
 * own, left by a crash), so two takers can never both win.
 */

interface Lease {
  owner: string;
  expiresAt: string;
}

/** Who is asking, and how long a lease they take lasts. */
export interface LeaseHolder {
  holderId: string;
  now: () => Date;
  config: Pick<ServiceConfig, 'leaseSeconds' | 'notReadyDelaySeconds'>;
}

const decoder = new TextDecoder();

/** The lease object of an output folder. */
export function leaseKey(folder: string): string {
  return `${folder}.lease`;
}

function live(lease: Lease, who: LeaseHolder, now: Date): boolean {
  return lease.owner !== who.holderId && Date.parse(lease.expiresAt) > now.getTime();
}

/** Whether another worker holds an unexpired lease on the folder. */
export async function heldByAnother(store: ObjectStore, folder: string, who: LeaseHolder): Promise<boolean> {
  const held = await store.get(leaseKey(folder));
  return held !== null && live(JSON.parse(decoder.decode(held.body)) as Lease, who, who.now());
}

/**
 * Takes the folder's lease for `who`. Returns null when taken, or the owner of a live lease instead: that
 * worker writes the outputs, and if it dies its own delivery is retried, so the caller's delivery is done.
 */
export async function takeLease(store: ObjectStore, folder: string, who: LeaseHolder): Promise<string | null> {
  const key = leaseKey(folder);
  const now = who.now();
  const lease = JSON.stringify({
    owner: who.holderId,
    expiresAt: new Date(now.getTime() + who.config.leaseSeconds * 1000).toISOString(),
  } satisfies Lease);
  if (await store.put(key, lease, { createOnly: true, contentType: 'application/json' })) return null;
  const held = await store.get(key);
  if (held === null) throw new NotReadyError('lease vanished while taking it', 1);
  const current = JSON.parse(decoder.decode(held.body)) as Lease;
  if (live(current, who, now)) return current.owner;
  if (!(await store.put(key, lease, { ifMatch: held.etag, contentType: 'application/json' }))) {
    throw new NotReadyError('another worker took the expired lease first', who.config.notReadyDelaySeconds);
  }
  return null;
}

/** Gives the lease up: the report now stops every later attempt, so it has nothing more to guard. */
export async function releaseLease(store: ObjectStore, folder: string): Promise<void> {
  await store.delete(leaseKey(folder));
}
