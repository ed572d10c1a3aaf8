import { connect, createServer, type Server, type Socket } from 'node:net';

/** What the proxy does to the next connections it accepts. */
export type Fault =
  | { kind: 'http-503' } // answers an S3 "SlowDown"-style 503 itself
  | { kind: 'stall' } // accepts and never answers
  | { kind: 'cut-request'; afterBytes: number }; // forwards part of the request, then cuts both sides

/**
 * A TCP proxy in front of a real server that injects faults into chosen connections, so retries are
 * tested against real sockets rather than a mocked client. Faults are consumed in order, one per
 * connection that matches `when` (default: every connection).
 */
export class FaultProxy {
  private server: Server;
  private faults: { fault: Fault; when: (head: string) => boolean }[] = [];
  private sockets = new Set<Socket>();
  readonly injected: string[] = [];
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => this.handle(client));
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
    return `http://127.0.0.1:${this.port}`;
  }

  /** Queues a fault for the next connection whose first request line matches. */
  inject(fault: Fault, when: (requestHead: string) => boolean = () => true): void {
    this.faults.push({ fault, when });
  }

  pending(): number {
    return this.faults.length;
  }

  private handle(client: Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.once('data', (first: Buffer) => {
      const head = first.subarray(0, 200).toString('latin1').split('\r\n')[0] ?? '';
      const i = this.faults.findIndex((f) => f.when(head));
      const fault = i >= 0 ? this.faults.splice(i, 1)[0]!.fault : null;
      if (fault) this.injected.push(`${fault.kind} ${head}`);
      if (fault?.kind === 'http-503') {
        const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>';
        client.end(
          `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        );
        return;
      }
      if (fault?.kind === 'stall') return; // the client's timeout must fire
      const upstream = connect(this.target.port, this.target.host);
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      if (fault?.kind === 'cut-request') {
        upstream.write(first.subarray(0, Math.min(first.length, fault.afterBytes)));
        setTimeout(() => {
          upstream.destroy();
          client.destroy();
        }, 20);
        return;
      }
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}
