import { TransientError } from '../errors.ts';
import { PermanentJobError } from '../errors.ts';
import type { ObjectStore, StoreResolver, StoredObject } from './object-store.ts';

/** Where and how to reach the MLflow tracking server. */
export interface MlflowConfig {
  /** Tracking URI, e.g. https://mlflow.example.com; the only host called for MLflow sources. */
  trackingUri: string;
  token: string | null;
  fetch: typeof fetch;
  /** Buckets the service may read: an `s3://` artifact location is read directly when its bucket is one. */
  buckets: StoreResolver;
}

/** Where a version's artifacts are: behind the tracking server's artifact proxy, or in a bucket we read. */
type Location = { kind: 'proxy'; root: string } | { kind: 'bucket'; store: ObjectStore; root: string };

/** Registered model names and versions come from webhook bodies; only these shapes reach a URL. */
export const MLFLOW_NAME = /^[\w .\-/]{1,256}$/;
export const MLFLOW_VERSION = /^[1-9][0-9]{0,9}$/;

interface ArtifactFile {
  path: string;
  is_dir: boolean;
  file_size?: number | string;
}

/**
 * One registered model version's artifacts, read through the tracking server's REST API (MLflow docs,
 * "REST API": `GET /api/2.0/mlflow/model-versions/get-download-uri`, and the artifact proxy
 * `GET /api/2.0/mlflow-artifacts/artifacts?path=` to list, `GET /api/2.0/mlflow-artifacts/artifacts/<path>`
 * to download), or straight from an S3 bucket the service reads. Model versions are immutable, so the version number names the content. Its tags are the
 * version's tags (`POST /api/2.0/mlflow/model-versions/set-tag`): the gating mark MLflow users see.
 */
export class MlflowStore implements ObjectStore {
  readonly bucket: string;
  private root: Promise<Location> | undefined;
  private sizes: Map<string, number> | undefined;

  constructor(
    private readonly config: MlflowConfig,
    readonly name: string,
    readonly version: string,
  ) {
    if (!MLFLOW_NAME.test(name) || !MLFLOW_VERSION.test(version)) throw new Error(`not a registered model version: ${name} v${version}`);
    this.bucket = `mlflow:${name}`;
  }

  private async call(path: string, init: RequestInit = {}): Promise<Response | null> {
    const url = `${this.config.trackingUri}${path}`;
    let res: Response;
    try {
      res = await this.config.fetch(url, {
        ...init,
        headers: {
          ...(init.headers as Record<string, string>),
          ...(this.config.token ? { authorization: `Bearer ${this.config.token}` } : {}),
        },
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      throw new TransientError(`MLflow ${init.method ?? 'GET'} ${path} failed: ${(err as Error).message}`, { cause: err });
    }
    if (res.status === 404) return null;
    if (res.status === 429 || res.status >= 500) throw new TransientError(`MLflow ${path} answered ${res.status}`);
    if (!res.ok) throw new Error(`MLflow ${path} answered ${res.status}`);
    return res;
  }

  /**
   * Where the version's artifacts are, asked of the tracking server (it resolves models:/ and runs:/
   * sources): "mlflow-artifacts:/<path>" through the proxy, "s3://<bucket>/<path>" directly from a bucket
   * the service is configured for. Anything else is refused by name, never fetched.
   */
  private location(): Promise<Location> {
    this.root ??= (async (): Promise<Location> => {
      const res = await this.call(
        `/api/2.0/mlflow/model-versions/get-download-uri?name=${encodeURIComponent(this.name)}&version=${this.version}`,
      );
      if (res === null) throw new PermanentJobError(`MLflow has no ${this.name} version ${this.version}`);
      const uri = ((await res.json()) as { artifact_uri?: string }).artifact_uri ?? '';
      const proxied = /^mlflow-artifacts:(?:\/\/[^/]*)?\/(.*)$/.exec(uri);
      if (proxied) return { kind: 'proxy', root: proxied[1]!.replace(/\/+$/, '') };
      const s3 = /^s3a?:\/\/([^/]+)\/(.*)$/.exec(uri);
      const store = s3 ? this.config.buckets(s3[1]!) : null;
      if (s3 && store) return { kind: 'bucket', store, root: s3[2]!.replace(/\/+$/, '') };
      throw new PermanentJobError(
        `${this.name} v${this.version}: artifacts at ${uri} are neither behind the tracking server's artifact proxy nor in a bucket this service may read (BUCKETS)`,
      );
    })();
    return this.root;
  }

  private async listDir(path: string, out: Map<string, number>, depth: number): Promise<void> {
    const res = await this.call(`/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(path)}`);
    const files = res === null ? [] : (((await res.json()) as { files?: ArtifactFile[] }).files ?? []);
    for (const f of files) {
      const full = `${path}/${f.path.split('/').at(-1)}`;
      if (f.is_dir && depth < 8) await this.listDir(full, out, depth + 1);
      else if (!f.is_dir) out.set(full, Number(f.file_size ?? 0));
    }
  }

  private async files(): Promise<Map<string, number>> {
    if (this.sizes) return this.sizes;
    const where = await this.location();
    const all = new Map<string, number>();
    if (where.kind === 'proxy') await this.listDir(where.root, all, 0);
    else for (const key of await where.store.list(`${where.root}/`)) all.set(key, (await where.store.head(key))?.size ?? 0);
    this.sizes = new Map([...all].map(([p, s]) => [p.slice(where.root.length + 1), s]));
    return this.sizes;
  }

  async list(prefix: string): Promise<string[]> {
    return [...(await this.files()).keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async head(key: string): Promise<{ etag: string; size: number } | null> {
    const size = (await this.files()).get(key);
    return size === undefined ? null : { etag: `v${this.version}`, size };
  }

  async get(key: string): Promise<StoredObject | null> {
    if (!(await this.files()).has(key)) return null;
    const where = await this.location();
    if (where.kind === 'bucket') {
      const got = await where.store.get(`${where.root}/${key}`);
      return got === null ? null : { body: got.body, etag: `v${this.version}` };
    }
    const path = `${where.root}/${key}`.split('/').map(encodeURIComponent).join('/');
    const res = await this.call(`/api/2.0/mlflow-artifacts/artifacts/${path}`);
    return res === null ? null : { body: new Uint8Array(await res.arrayBuffer()), etag: `v${this.version}` };
  }

  async put(): Promise<boolean> {
    throw new Error('MLflow artifacts are read-only for shapguard');
  }

  async delete(): Promise<void> {
    throw new Error('MLflow artifacts are read-only for shapguard');
  }

  /** Version tags: read is not needed (set-tag only touches our keys), written one key at a time. */
  readonly tags = {
    get: async (): Promise<Record<string, string>> => ({}),
    put: async (_key: string, tags: Record<string, string>): Promise<void> => {
      for (const [key, value] of Object.entries(tags)) {
        await this.call('/api/2.0/mlflow/model-versions/set-tag', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: this.name, version: this.version, key: key.replace(/^shapguard-/, 'shapguard.'), value }),
        });
      }
    },
  };
}
