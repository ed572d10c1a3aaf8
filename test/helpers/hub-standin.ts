import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** A request the stand-in saw, for asserting what the service called. */
export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | undefined;
}

interface Repo {
  private: boolean;
  commits: Map<string, Map<string, Uint8Array>>;
}

const LFS_SUFFIXES = ['.bin', '.h5', '.keras', '.hdf5'];

/**
 * A local stand-in for the parts of the Hugging Face Hub API the service calls, as the Hub documents
 * and serves them (docs: "Hub API Endpoints"; huggingface_hub's file_download reads the same headers):
 * - GET /api/models/{repo}/tree/{rev}?recursive=true: [{type, oid, size, path}], paged with a Link header;
 * - HEAD /{repo}/resolve/{rev}/{path}: 200 with ETag for regular files; for LFS files a 302 to the
 *   content with X-Linked-Etag (the sha256) and X-Linked-Size, which is what a client must read;
 * - GET /{repo}/resolve/{rev}/{path}: the bytes, LFS files through that redirect;
 * - private repos answer 401 without `Authorization: Bearer <token>`;
 * - POST /api/models/{repo}/discussions {title, description, pullRequest} opens a discussion (token required).
 */
export class HubStandIn {
  private server: Server;
  private repos = new Map<string, Repo>();
  private lfs = new Map<string, Uint8Array>();
  readonly seen: SeenRequest[] = [];
  readonly discussions: { repo: string; title: string; description: string; pullRequest: boolean }[] = [];
  endpoint = '';

  constructor(
    private readonly token: string,
    private readonly pageSize = 2,
  ) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this.endpoint;
  }

  commit(repo: string, sha: string, files: Record<string, Uint8Array>, isPrivate = true): void {
    const r = this.repos.get(repo) ?? { private: isPrivate, commits: new Map() };
    r.commits.set(sha, new Map(Object.entries(files)));
    this.repos.set(repo, r);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.endpoint);
    this.seen.push({ method: req.method ?? '', path: url.pathname + url.search, authorization: req.headers.authorization });
    const lfs = /^\/lfs\/([0-9a-f]{64})$/.exec(url.pathname);
    if (lfs) {
      const body = this.lfs.get(lfs[1]!);
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length, etag: `"${lfs[1]}"` });
      return void res.end(req.method === 'HEAD' ? undefined : body);
    }
    const discussion = /^\/api\/models\/([^/]+\/[^/]+)\/discussions$/.exec(url.pathname);
    if (discussion && req.method === 'POST') {
      // POST /api/{repo_type}s/{repo_id}/discussions {title, description, pullRequest}, token required.
      if (req.headers.authorization !== `Bearer ${this.token}`) return void res.writeHead(401).end();
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const body = JSON.parse(raw) as { title: string; description: string; pullRequest: boolean };
      if (typeof body.title !== 'string' || body.title.length < 3) return void res.writeHead(400).end('{"error":"title"}');
      this.discussions.push({ repo: discussion[1]!, ...body });
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ num: this.discussions.length, pullRequest: false }));
    }
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repoId = tree?.[1] ?? resolve?.[1];
    const repo = repoId ? this.repos.get(repoId) : undefined;
    if (!repo) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Repository not found"}');
    if (repo.private && req.headers.authorization !== `Bearer ${this.token}`)
      return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Invalid credentials in Authorization header"}');
    const files = repo.commits.get((tree ?? resolve)![2]!);
    if (!files) return void res.writeHead(404).end('{"error":"Invalid rev id"}');
    if (tree) {
      const all = [...files].map(([path, bytes]) => ({ type: 'file', oid: sha1(bytes), size: bytes.length, path }));
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = all.slice(cursor, cursor + this.pageSize);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (cursor + this.pageSize < all.length)
        headers.link = `<${this.endpoint}${url.pathname}?recursive=true&cursor=${cursor + this.pageSize}>; rel="next"`;
      return void res.writeHead(200, headers).end(JSON.stringify(page));
    }
    const path = decodeURIComponent(resolve![3]!);
    const bytes = files.get(path);
    if (!bytes) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end();
    if (LFS_SUFFIXES.some((s) => path.endsWith(s))) {
      const oid = createHash('sha256').update(bytes).digest('hex');
      this.lfs.set(oid, bytes);
      res.writeHead(302, {
        location: `${this.endpoint}/lfs/${oid}`,
        'x-linked-etag': `"${oid}"`,
        'x-linked-size': String(bytes.length),
        'x-repo-commit': resolve![2]!,
      });
      return void res.end();
    }
    res.writeHead(200, { etag: `"${sha1(bytes)}"`, 'content-length': bytes.length, 'x-repo-commit': resolve![2]! });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  }

  close(): void {
    this.server.close();
  }
}

function sha1(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex');
}
