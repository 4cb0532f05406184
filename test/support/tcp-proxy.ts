import * as net from 'node:net';

/**
 * A TCP proxy between the app and RabbitMQ, for injecting network faults a broker command cannot:
 * - `cut()`: every open connection is reset, and new ones are refused (accepted, then destroyed)
 *   until `resume()` — the broker looks unreachable.
 * - `stall()`: bytes stop flowing both ways while every socket stays open (a half-open connection:
 *   nothing is closed, nothing arrives); new connections are held the same way. `resume()` flushes
 *   what was held, in order.
 * - `close()`: destroys everything and stops listening.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private mode: 'open' | 'cut' | 'stalled' = 'open';
  /** Connections accepted since the proxy started (refused ones included). */
  accepted = 0;
  /** Connections refused while cut. */
  refused = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort = 5672, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (client) => proxy.accept(client, targetPort, targetHost));
    return proxy;
  }

  /** An AMQP URL through the proxy. */
  url(credentials = 'guest:guest'): string {
    return `amqp://${credentials}@127.0.0.1:${this.port}`;
  }

  /** Connections currently forwarded (or held). */
  get open(): number {
    return this.pairs.size;
  }

  get state(): 'open' | 'cut' | 'stalled' {
    return this.mode;
  }

  cut(): void {
    this.mode = 'cut';
    for (const pair of [...this.pairs]) pair.destroy(true);
  }

  stall(): void {
    if (this.mode === 'open') this.mode = 'stalled';
    for (const pair of this.pairs) pair.stalled = true;
  }

  resume(): void {
    this.mode = 'open';
    for (const pair of this.pairs) pair.flush();
  }

  async close(): Promise<void> {
    this.mode = 'cut';
    for (const pair of [...this.pairs]) pair.destroy(false);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, port: number, host: string): void {
    this.accepted++;
    client.on('error', () => undefined);
    if (this.mode === 'cut') {
      this.refused++;
      client.destroy();
      return;
    }
    const upstream = net.connect({ port, host, noDelay: true });
    upstream.on('error', () => undefined);
    client.setNoDelay(true);
    const pair = new Pair(client, upstream, this.mode === 'stalled', () => this.pairs.delete(pair));
    this.pairs.add(pair);
  }
}

class Pair {
  private readonly held: Array<{ to: net.Socket; chunk: Buffer }> = [];
  private done = false;

  constructor(
    private readonly client: net.Socket,
    private readonly upstream: net.Socket,
    public stalled: boolean,
    private readonly onGone: () => void,
  ) {
    client.on('data', (chunk: Buffer) => this.forward(upstream, chunk));
    upstream.on('data', (chunk: Buffer) => this.forward(client, chunk));
    // Either side going away takes the other with it (the proxy keeps no half-dead pairs).
    client.on('close', () => this.destroy(false));
    upstream.on('close', () => this.destroy(false));
  }

  private forward(to: net.Socket, chunk: Buffer): void {
    if (this.done) return;
    if (this.stalled) this.held.push({ to, chunk });
    else to.write(chunk);
  }

  flush(): void {
    this.stalled = false;
    for (const { to, chunk } of this.held.splice(0)) if (!to.destroyed) to.write(chunk);
  }

  destroy(reset: boolean): void {
    if (this.done) return;
    this.done = true;
    this.held.length = 0;
    for (const socket of [this.client, this.upstream]) {
      if (reset && typeof socket.resetAndDestroy === 'function' && socket.readyState !== 'opening') socket.resetAndDestroy();
      else socket.destroy();
    }
    this.onGone();
  }
}
