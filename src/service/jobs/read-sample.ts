import { SAMPLE_LIMITS, type SampleFile } from '../../core/sample/sample.ts';
import type { ServiceConfig } from '../config.ts';
import { PermanentJobError } from '../errors.ts';
import type { ObjectStore } from '../storage/object-store.ts';

/** Keys looked at under a sample prefix, so a huge prefix is refused rather than read. */
const MAX_KEYS = 4 * SAMPLE_LIMITS.maxImages;

/** The sample prefix configured for a model key (CLEAN_SAMPLES, longest model prefix first), or null. */
export function samplePrefixFor(key: string, config: Pick<ServiceConfig, 'cleanSamples'>): string | null {
  const match = config.cleanSamples.filter((c) => key.startsWith(c.models)).sort((a, b) => b.models.length - a.models.length)[0];
  return match?.samples ?? null;
}

/**
 * The trusted sample for a model (few-shot mode), from the same bucket: every object under the configured
 * prefix, named relative to it as the engine expects (`<class index>/<image>`). Sizes are checked by HEAD
 * before a byte is read and the caps apply while listing; what the files are, the engine checks
 * (core/sample/sample.ts), so a bad sample gets a precise "error" report. Undefined when none is configured.
 */
export async function readSampleObjects(
  store: ObjectStore,
  modelKey: string,
  config: Pick<ServiceConfig, 'cleanSamples'>,
): Promise<SampleFile[] | undefined> {
  const prefix = samplePrefixFor(modelKey, config);
  if (prefix === null) return undefined;
  const keys = (await store.list(prefix)).sort();
  if (keys.length > MAX_KEYS) throw new PermanentJobError(`clean sample ${store.bucket}/${prefix}: more than ${MAX_KEYS} objects`);
  const files: SampleFile[] = [];
  let bytes = 0;
  for (const key of keys) {
    const head = await store.head(key);
    if (head === null) continue;
    if (head.size > SAMPLE_LIMITS.maxFileBytes)
      throw new PermanentJobError(`clean sample: ${key} is ${head.size} bytes, more than ${SAMPLE_LIMITS.maxFileBytes} per image`);
    bytes += head.size;
    if (bytes > SAMPLE_LIMITS.maxTotalBytes)
      throw new PermanentJobError(`clean sample ${store.bucket}/${prefix}: more than ${SAMPLE_LIMITS.maxTotalBytes} bytes in all`);
    const got = await store.get(key);
    if (got !== null) files.push({ path: key.slice(prefix.length), bytes: got.body });
  }
  return files;
}
