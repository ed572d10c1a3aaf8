import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { SeenRequest } from './hub-standin.ts';

interface Version {
  artifactUri: string;
  files: Map<string, Uint8Array>;
  tags: Record<string, string>;
}

/**
 * A local stand-in for the MLflow tracking server endpoints the service calls, with the paths, methods
 * and bodies of MLflow's REST API docs:
 * - GET /api/2.0/mlflow/model-versions/get-download-uri?name=&version= → {artifact_uri};
 * - GET /api/2.0/mlflow-artifacts/artifacts?path=<dir> → {files: [{path, is_dir, file_size}]} (one level);
 * - GET /api/2.0/mlflow-artifacts/artifacts/<path> → the file (the artifact proxy);
 * - POST /api/2.0/mlflow/model-versions/set-tag {name, version, key, value} → {};
 * every call needs `Authorization: Bearer <token>` (a tracking server behind token auth).
 */
export class MlflowStandIn {
  private server: Server;
  private versions = new Map<string, Version>();
  readonly seen: SeenRequest[] = [];
  endpoint = '';

  constructor(private readonly token: string) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this.endpoint;
  }

  /** A version whose artifacts the proxy serves under `artifactRoot`, or (a full URI) live elsewhere. */
  register(name: string, version: string, artifactRoot: string, files: Record<string, Uint8Array>): void {
    const prefixed = new Map(Object.entries(files).map(([p, b]) => [`${artifactRoot}/${p}`, b]));
    const uri = artifactRoot.includes('://') ? artifactRoot : `mlflow-artifacts:/${artifactRoot}`;
    this.versions.set(`${name}@${version}`, { artifactUri: uri, files: artifactRoot.includes('://') ? new Map() : prefixed, tags: {} });
  }

  tagsOf(name: string, version: string): Record<string, string> {
    return this.versions.get(`${name}@${version}`)!.tags;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.endpoint);
    this.seen.push({ method: req.method ?? '', path: url.pathname + url.search, authorization: req.headers.authorization });
    const json = (status: number, body: unknown) =>
      void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.headers.authorization !== `Bearer ${this.token}`) return json(401, { error_code: 'UNAUTHENTICATED', message: 'bad token' });
    const all = [...this.versions.values()].flatMap((v) => [...v.files]);
    if (url.pathname === '/api/2.0/mlflow/model-versions/get-download-uri') {
      const v = this.versions.get(`${url.searchParams.get('name')}@${url.searchParams.get('version')}`);
      return v ? json(200, { artifact_uri: v.artifactUri }) : json(404, { error_code: 'RESOURCE_DOES_NOT_EXIST' });
    }
    if (url.pathname === '/api/2.0/mlflow-artifacts/artifacts') {
      const dir = url.searchParams.get('path') ?? '';
      const children = new Map<string, { is_dir: boolean; file_size?: number }>();
      for (const [p, b] of all) {
        if (!p.startsWith(`${dir}/`)) continue;
        const [first, ...rest] = p.slice(dir.length + 1).split('/');
        children.set(first!, rest.length > 0 ? { is_dir: true } : { is_dir: false, file_size: b.length });
      }
      return json(200, { files: [...children].map(([path, f]) => ({ path, ...f })) });
    }
    if (url.pathname.startsWith('/api/2.0/mlflow-artifacts/artifacts/')) {
      const path = decodeURIComponent(url.pathname.slice('/api/2.0/mlflow-artifacts/artifacts/'.length));
      const file = all.find(([p]) => p === path)?.[1];
      return file
        ? void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(file)
        : json(404, { error_code: 'RESOURCE_DOES_NOT_EXIST' });
    }
    if (url.pathname === '/api/2.0/mlflow/model-versions/set-tag' && req.method === 'POST') {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const body = JSON.parse(raw) as { name: string; version: string; key: string; value: string };
      const v = this.versions.get(`${body.name}@${body.version}`);
      if (!v) return json(404, { error_code: 'RESOURCE_DOES_NOT_EXIST' });
      v.tags[body.key] = body.value;
      return json(200, {});
    }
    json(404, { error_code: 'ENDPOINT_NOT_FOUND' });
  }

  close(): void {
    this.server.close();
  }
}
