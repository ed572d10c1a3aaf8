/** HTTP statuses the service answers with on purpose. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 503;

/**
 * An error the request handler turns into `{ error: { code, message } }` with `status`. The message goes
 * to the caller as is: it must be precise and must never contain a secret.
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A storage call failed in a way that may pass (5xx, timeout, cut connection): the job is retried. */
export class TransientError extends Error {
  override readonly name = 'TransientError';
}

/** The job cannot start yet (a model.json whose shards are not all uploaded): retried after `delaySeconds`. */
export class NotReadyError extends Error {
  override readonly name = 'NotReadyError';
  constructor(
    message: string,
    readonly delaySeconds: number,
  ) {
    super(message);
  }
}

/** A job that can never succeed (the object is gone, too large): reported, not retried. */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError';
}
