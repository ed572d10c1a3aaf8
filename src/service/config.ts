import { DEFAULT_SEED } from '../core/scan/options.ts';
/** What the service is told by its environment (wrangler vars and secrets, or process.env on Node). */
export interface ServiceConfig {
  /** Outputs go to `<outputPrefix><original key>/<etag>/`; keys under it are never scanned. */
  outputPrefix: string;
  /** Only keys under one of these prefixes are scanned (empty: all). */
  modelPrefixes: string[];
  /** Largest webhook body accepted, bytes. */
  maxBodyBytes: number;
  /** Secrets per source; a source without one is switched off (404), never open. */
  secrets: {
    standardWebhooks: string[];
    mlflow: string[];
    huggingface: string | null;
    /** Hub read token for private repos. */
    hubToken: string | null;
    /** Bearer token for the MLflow tracking server. */
    mlflowToken: string | null;
    /** Signs our scan.completed callbacks (a whsec_ secret). */
    callback: string | null;
    /** Ed25519 private key (PKCS#8 PEM) that signs attestation.dsse.json beside each report. */
    signingKey: string | null;
    minio: string | null;
    eventbridge: string | null;
    /** Bearer token of the status API. */
    api: string | null;
  };
  /** Header an EventBridge connection sends its API key in. */
  eventbridgeHeader: string;
  snsTopics: string[];
  /** The bucket POST /v1/scans uses when none is named. */
  defaultBucket: string | null;
  /** Where outputs of registry sources (Hugging Face, MLflow) go. */
  outputBucket: string | null;
  /** The Hugging Face Hub (or a mirror); the only host called for Hub sources. */
  hubEndpoint: string;
  /** The MLflow tracking server; the only host called for MLflow sources (null: MLflow off). */
  mlflowTrackingUri: string | null;
  /** Where signed scan.completed callbacks go (configuration only, never a request). */
  callbackUrls: string[];
  /** Open a discussion on the Hub repo with the verdict of each model scanned (needs a write token). */
  hubDiscussions: boolean;
  scan: { seed: number; budgetSeconds: number; maxEvals: number | null };
  /**
   * Few-shot mode per model prefix: models under `models` are scanned with the trusted sample under
   * `samples` in the same bucket (`<class index>/<image>`). The longest matching prefix wins.
   */
  cleanSamples: { models: string; samples: string }[];
  /** Deliveries of one job before it goes to the dead-letter queue with an "error" report. */
  maxAttempts: number;
  /** Seconds a job may hold an object before another worker may take it over. */
  leaseSeconds: number;
  /** First retry delay after a storage fault, doubled per attempt (capped at 5 minutes). */
  retryBaseSeconds: number;
  /** Seconds before looking again for weight shards or a Keras config still being uploaded. */
  notReadyDelaySeconds: number;
}

type EnvLike = Readonly<Record<string, unknown>>;

function str(env: EnvLike, name: string): string | null {
  const v = env[name];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
}

function list(env: EnvLike, name: string): string[] {
  return (str(env, name) ?? '').split(/[\s,]+/).filter((s) => s !== '');
}

function num(env: EnvLike, name: string, fallback: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === null) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`${name}=${raw}: expected a number in [${min}, ${max}]`);
  return v;
}

/** A base URL (no trailing slash); plain http only for loopback hosts (local stand-ins). */
function httpsBase(env: EnvLike, name: string, fallback: string): string {
  const raw = str(env, name) ?? fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${name}=${raw}: not a URL`);
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new Error(`${name}=${raw}: must be https`);
  return raw.replace(/\/+$/, '');
}

/**
 * Reads the configuration from environment variables (names in docs/service.md). Wrong values fail at start,
 * with the variable's name; secret values are never echoed.
 */
export function configFromEnv(env: EnvLike): ServiceConfig {
  const outputPrefix = str(env, 'SHAPGUARD_OUTPUT_PREFIX') ?? 'shapguard/';
  if (!outputPrefix.endsWith('/')) throw new Error(`SHAPGUARD_OUTPUT_PREFIX=${outputPrefix}: must end with '/'`);
  const budgetSeconds = num(env, 'SCAN_BUDGET_SECONDS', 60, 1, 3600);
  if (list(env, 'CALLBACK_URLS').length > 0 && str(env, 'CALLBACK_SECRET') === null)
    throw new Error('CALLBACK_URLS needs CALLBACK_SECRET (a whsec_… secret) to sign the callbacks');
  const maxEvals = str(env, 'SCAN_MAX_EVALS') === null ? null : num(env, 'SCAN_MAX_EVALS', 0, 1, 1e12);
  return {
    outputPrefix,
    modelPrefixes: list(env, 'MODEL_PREFIXES'),
    maxBodyBytes: num(env, 'MAX_BODY_BYTES', 256 * 1024, 1024, 16 * 1024 * 1024),
    secrets: {
      standardWebhooks: list(env, 'STANDARD_WEBHOOK_SECRETS'),
      mlflow: list(env, 'MLFLOW_WEBHOOK_SECRETS'),
      huggingface: str(env, 'HF_WEBHOOK_SECRET'),
      hubToken: str(env, 'HF_TOKEN'),
      mlflowToken: str(env, 'MLFLOW_TRACKING_TOKEN'),
      callback: str(env, 'CALLBACK_SECRET'),
      signingKey: str(env, 'SHAPGUARD_SIGNING_KEY'),
      minio: str(env, 'MINIO_AUTH_TOKEN'),
      eventbridge: str(env, 'EVENTBRIDGE_API_KEY'),
      api: str(env, 'SHAPGUARD_API_TOKEN'),
    },
    eventbridgeHeader: (str(env, 'EVENTBRIDGE_API_KEY_HEADER') ?? 'x-shapguard-api-key').toLowerCase(),
    snsTopics: list(env, 'SNS_TOPIC_ARNS'),
    defaultBucket: str(env, 'DEFAULT_BUCKET'),
    outputBucket: str(env, 'OUTPUT_BUCKET'),
    hubEndpoint: httpsBase(env, 'HF_ENDPOINT', 'https://huggingface.co'),
    mlflowTrackingUri: str(env, 'MLFLOW_TRACKING_URI') === null ? null : httpsBase(env, 'MLFLOW_TRACKING_URI', ''),
    callbackUrls: list(env, 'CALLBACK_URLS').map((u, i) => httpsBase({ [`CALLBACK_URLS[${i}]`]: u }, `CALLBACK_URLS[${i}]`, u)),
    hubDiscussions: str(env, 'HF_DISCUSSIONS') === 'true',
    scan: { seed: num(env, 'SCAN_SEED', DEFAULT_SEED, 0, 2 ** 31), budgetSeconds, maxEvals },
    // Commas or new lines between items, not spaces: S3 keys may hold spaces.
    cleanSamples: (str(env, 'CLEAN_SAMPLES') ?? '')
      .split(/[,\n]+/)
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((item) => {
        const [models, samples, ...rest] = item.split('=');
        if (models === undefined || samples === undefined || rest.length > 0 || !samples.endsWith('/') || samples.startsWith(outputPrefix))
          throw new Error(`CLEAN_SAMPLES item ${item}: expected <model prefix>=<sample prefix>/ (a folder outside ${outputPrefix})`);
        return { models, samples };
      }),
    maxAttempts: num(env, 'MAX_ATTEMPTS', 5, 1, 100),
    leaseSeconds: num(env, 'LEASE_SECONDS', Math.max(300, budgetSeconds * 4), 10, 86400),
    retryBaseSeconds: num(env, 'RETRY_BASE_SECONDS', 5, 0, 300),
    notReadyDelaySeconds: num(env, 'NOT_READY_DELAY_SECONDS', 30, 0, 3600),
  };
}
