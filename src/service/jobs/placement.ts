import type { ServiceConfig } from '../config.ts';
import type { ObjectRef } from './job.ts';
import type { ObjectStore, StoreResolver } from '../storage/object-store.ts';

/** Where a job reads its model and where it writes the outputs and marks. */
export interface Placement {
  source: ObjectStore;
  output: ObjectStore;
  /** The key the outputs are filed under in `output` (the object's key, or the registry path). */
  outputKey: string;
}

/** Opens the read-only store of a registry source (a Hub repo at a commit, …); null if not one. */
export type RegistryResolver = (ref: ObjectRef) => ObjectStore | null;

/**
 * A bucket object is read and written back in its own bucket; a registry's model (the Hub, MLflow) is read
 * from the registry and its outputs go to OUTPUT_BUCKET under `<registry>/<name>/<path>`. Null, with the
 * reason, when the service has no store for it.
 */
export function placementOf(
  ref: ObjectRef,
  stores: StoreResolver,
  registry: RegistryResolver | undefined,
  config: Pick<ServiceConfig, 'outputBucket'>,
): Placement | string {
  const fromRegistry = registry?.(ref) ?? null;
  if (fromRegistry !== null) {
    if (config.outputBucket === null) return `${ref.bucket}: registry sources need OUTPUT_BUCKET for their outputs`;
    const output = stores(config.outputBucket);
    if (output === null) return `OUTPUT_BUCKET ${config.outputBucket} is not a configured bucket`;
    const [kind, name] = ref.bucket.split(/:(.*)/s) as [string, string];
    // Registry names: huggingface/<repo>/<path>, mlflow/<model>/<version>/<path>.
    const where = kind === 'hf' ? `huggingface/${name}` : `${kind}/${name}/${ref.versionId ?? ''}`;
    return { source: fromRegistry, output, outputKey: `${where}/${ref.key}` };
  }
  const store = stores(ref.bucket);
  return store === null ? `bucket ${ref.bucket} is not configured for this service` : { source: store, output: store, outputKey: ref.key };
}
