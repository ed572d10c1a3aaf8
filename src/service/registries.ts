import { attestationSigner, type AttestationSigner } from '../core/output/attest.ts';
import { callbackNotifier } from './callbacks.ts';
import type { ServiceConfig } from './config.ts';
import type { Notifier } from './jobs/mark.ts';
import type { RegistryResolver } from './jobs/placement.ts';
import { HubStore } from './storage/hub.ts';
import type { StoreResolver } from './storage/object-store.ts';
import { MlflowStore } from './storage/mlflow.ts';

/**
 * The registry sources a runtime can read, from the configuration: Hub repos (`hf:<repo>` at a commit)
 * through HF_ENDPOINT with HF_TOKEN, MLflow model versions (`mlflow:<name>`) through MLFLOW_TRACKING_URI. `fetchFn` is the runtime's fetch; nothing else is ever called.
 */
export function registriesFor(config: ServiceConfig, fetchFn: typeof fetch, buckets: StoreResolver): RegistryResolver {
  return (ref) => {
    if (ref.bucket.startsWith('hf:') && ref.versionId !== undefined) {
      return new HubStore(
        { endpoint: config.hubEndpoint, token: config.secrets.hubToken, fetch: fetchFn, discussions: config.hubDiscussions },
        ref.bucket.slice(3),
        ref.versionId,
      );
    }
    if (ref.bucket.startsWith('mlflow:') && ref.versionId !== undefined && config.mlflowTrackingUri !== null) {
      return new MlflowStore(
        { trackingUri: config.mlflowTrackingUri, token: config.secrets.mlflowToken, fetch: fetchFn, buckets },
        ref.bucket.slice('mlflow:'.length),
        ref.versionId,
      );
    }
    return null;
  };
}

/**
 * What a finished scan sends out besides its outputs: signed callbacks when CALLBACK_URLS is configured
 * (config guarantees the secret), and an attestation when SHAPGUARD_SIGNING_KEY is.
 */
export function afterScanFor(config: ServiceConfig, fetchFn: typeof fetch): { notify?: Notifier; sign?: AttestationSigner } {
  return {
    ...(config.callbackUrls.length > 0 && config.secrets.callback !== null
      ? { notify: callbackNotifier(config.callbackUrls, config.secrets.callback, fetchFn, () => new Date()) }
      : {}),
    ...(config.secrets.signingKey !== null ? { sign: attestationSigner(config.secrets.signingKey, 'SHAPGUARD_SIGNING_KEY') } : {}),
  };
}
