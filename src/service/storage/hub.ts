import { TransientError } from '../errors.ts';
import type { VerdictMark } from '../jobs/mark.ts';
import type { ObjectStore, StoredObject } from './object-store.ts';

/** Where and how to reach the Hugging Face Hub (or a mirror with the same API). */
export interface HubConfig {
  /** Announce each verdict as a discussion on the repo (HF_DISCUSSIONS; the token must be allowed to write). */
  discussions?: boolean;
  /** Base URL, e.g. https://huggingface.co; the only host the service calls for Hub sources. */
  endpoint: string;
  /** Read token for private repos (`Authorization: Bearer hf_…`). */
  token: string | null;
  fetch: typeof fetch;
}

/** Repo ids and commit shas come from webhook bodies: only these shapes may reach a URL. */
export const HUB_REPO = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
export const HUB_SHA = /^[0-9a-f]{40}$/;

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/**
 * One model repo at one commit, read through the Hub's HTTP API (docs: "Hub API Endpoints";
 * `GET /api/models/{repo}/tree/{rev}`, `GET|HEAD /{repo}/resolve/{rev}/{path}`). Read-only: outputs go to
 * the service's own bucket. Pinned to the commit the webhook named, so a later push cannot change what
 * this job scans.
 */
export class HubStore implements ObjectStore {
  readonly bucket: string;

  constructor(
    private readonly config: HubConfig,
    readonly repo: string,
    readonly revision: string,
  ) {
    if (!HUB_REPO.test(repo) || !HUB_SHA.test(revision)) throw new Error(`not a Hub model repo at a commit: ${repo}@${revision}`);
    this.bucket = `hf:${repo}`;
  }

  private async call(url: string, method: 'GET' | 'HEAD' | 'POST', json?: unknown): Promise<Response | null> {
    let res: Response;
    try {
      // HEAD is not redirected: for LFS files the Hub's own answer carries X-Linked-Etag/-Size, a CDN's would not.
      res = await this.config.fetch(url, {
        method,
        redirect: method === 'HEAD' ? 'manual' : 'follow',
        headers: {
          ...(this.config.token ? { authorization: `Bearer ${this.config.token}` } : {}),
          ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      throw new TransientError(`Hub ${method} ${url} failed: ${(err as Error).message}`, { cause: err });
    }
    if (res.status === 404) return null;
    if (res.status === 429 || res.status >= 500) throw new TransientError(`Hub ${method} ${url} answered ${res.status}`);
    if (!res.ok && !(method === 'HEAD' && res.status >= 300 && res.status < 400))
      throw new Error(
        `Hub ${method} ${url} answered ${res.status}${res.status === 401 || res.status === 403 ? ' (private repo: set HF_TOKEN)' : ''}`,
      );
    return res;
  }

  private resolveUrl(key: string): string {
    return `${this.config.endpoint}/${this.repo}/resolve/${this.revision}/${encodePath(key)}`;
  }

  /** Answers per path; the commit is pinned, so they cannot change (a read asks HEAD before GET). */
  private heads = new Map<string, Promise<{ etag: string; size: number } | null>>();

  head(key: string): Promise<{ etag: string; size: number } | null> {
    let head = this.heads.get(key);
    if (head === undefined) {
      head = this.call(this.resolveUrl(key), 'HEAD').then((res) => {
        if (res === null) return null;
        // LFS files: the Hub names the content by X-Linked-Etag/X-Linked-Size (the body is a redirect's).
        const etag = (res.headers.get('x-linked-etag') ?? res.headers.get('etag') ?? '').replace(/^W\//, '').replace(/"/g, '');
        return { etag, size: Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length') ?? 0) };
      });
      // A failed HEAD (a fault worth a retry) is not remembered.
      head.catch(() => this.heads.delete(key));
      this.heads.set(key, head);
    }
    return head;
  }

  async get(key: string): Promise<StoredObject | null> {
    const head = await this.head(key);
    if (head === null) return null;
    const res = await this.call(this.resolveUrl(key), 'GET');
    return res === null ? null : { body: new Uint8Array(await res.arrayBuffer()), etag: head.etag };
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let url: string | null = `${this.config.endpoint}/api/models/${this.repo}/tree/${this.revision}?recursive=true`;
    for (let page = 0; url !== null && page < 100; page++) {
      const res = await this.call(url, 'GET');
      if (res === null) throw new Error(`Hub repo ${this.repo}@${this.revision} not found`);
      const entries = (await res.json()) as { type: string; path: string }[];
      for (const e of entries) if (e.type === 'file' && e.path.startsWith(prefix)) out.push(e.path);
      // Pagination by Link header; the next page must stay on the configured endpoint.
      const next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1] ?? null;
      url = next !== null && next.startsWith(`${this.config.endpoint}/`) ? next : null;
    }
    return out;
  }

  async put(): Promise<boolean> {
    throw new Error('the Hub is read-only for shapguard');
  }

  /**
   * Opens a discussion on the repo with the verdict (Hub API: `POST /api/models/{repo}/discussions`
   * {title, description, pullRequest: false}, as huggingface_hub's create_discussion sends it).
   */
  async announce(key: string, mark: VerdictMark): Promise<void> {
    if (this.config.discussions !== true) return;
    const ships = {
      original: 'this model may ship',
      repaired: 'do not ship this model; ship the repaired copy',
      nothing: 'do not ship this model',
    }[mark.ship];
    const title = `shapguard: ${mark.verdict} (${ships}) — ${key} @ ${this.revision.slice(0, 8)}`;
    const description = [
      `**Verdict:** ${mark.verdict} · **deployable:** ${mark.deployable} · **ship:** ${mark.ship}`,
      `**Model:** \`${key}\` at commit \`${this.revision}\``,
      `**Report:** \`${mark.report}\`${mark.repaired.length > 0 ? `\n**Repaired model (ship this instead):** ${mark.repaired.map((r) => `\`${r}\``).join(', ')}` : ''}`,
      `Scanned by ${mark.tool} (ShapPruning).`,
    ].join('\n\n');
    await this.call(`${this.config.endpoint}/api/models/${this.repo}/discussions`, 'POST', { title, description, pullRequest: false });
  }

  async delete(): Promise<void> {
    throw new Error('the Hub is read-only for shapguard');
  }
}
