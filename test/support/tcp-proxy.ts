import * as net from 'node:net';
import { BROKER_PORT } from './broker';

/**
 * A TCP proxy between the app and RabbitMQ, for injecting network faults a broker command cannot:
 * - `cut()`: every open connection is reset, and new ones are refused (accepted, then destroyed)
 *   until `resume()` — the broker looks unreachable.
 * - `stall()`: bytes stop flowing both ways while every socket stays open (a half-open connection:
 *   nothing is closed, nothing arrives); new connections are held the same way. `resume()` flushes
 *   what was held, in order. `drop()` instead loses what was held (as a network that went down
 *   with packets in flight) and lets bytes flow again: a request sent meanwhile never arrives and
 *   its answer never comes, though the connection looks open to both sides (half-open).
 * - `holdSending(marker)` / `cutWhere(marker)`: the same, for one AMQP connection only — the one
 *   whose handshake carries `marker` (its `connection_name`, e.g. `svc:publisher`); holding stops
 *   only what the client sends, so the broker's side (confirms, deliveries) still arrives.
 * - `holdReceiving(marker)`: the other way, for one AMQP connection: what the broker sends
 *   (confirms, replies) is held while what the client sends still arrives — publishes the broker
 *   has taken but whose confirms the client never sees.
 * - `countSent(pattern)`: counts a byte pattern in what clients send, e.g. an exchange name to
 *   count the publishes written to it, whatever the client logs.
 * - `close()`: destroys everything and stops listening.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private readonly taps = new Set<Tap>();
  private mode: 'open' | 'cut' | 'stalled' = 'open';
  /** Connections accepted since the proxy started (refused ones included). */
  accepted = 0;
  /** Connections refused while cut. */
  refused = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort = BROKER_PORT, targetHost = '127.0.0.1'): Promise<TcpProxy> {
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

  drop(): void {
    this.mode = 'open';
    for (const pair of this.pairs) pair.flush(false);
  }

  /** Holds what the client sends on the connections whose handshake carries `marker`; returns how many. */
  holdSending(marker: string): number {
    const targets = this.named(marker);
    for (const pair of targets) pair.holdSending = true;
    return targets.length;
  }

  /** Holds what the broker sends to the connections whose handshake carries `marker`; returns how many. */
  holdReceiving(marker: string): number {
    const targets = this.named(marker);
    for (const pair of targets) pair.holdReceiving = true;
    return targets.length;
  }

  /** Bytes held so far from clients, not yet forwarded. */
  get heldFromClients(): number {
    let bytes = 0;
    for (const pair of this.pairs) bytes += pair.heldFromClient;
    return bytes;
  }

  /** Resets the connections whose handshake carries `marker` (what they held is dropped); returns how many. */
  cutWhere(marker: string): number {
    const targets = this.named(marker);
    for (const pair of targets) pair.destroy(true);
    return targets.length;
  }

  /** A live count of `pattern` in what clients send from now on (matches across chunk boundaries too). */
  countSent(pattern: Buffer | string): { readonly count: number } {
    const tap = new Tap(Buffer.isBuffer(pattern) ? pattern : Buffer.from(pattern));
    this.taps.add(tap);
    return tap;
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
    const pair = new Pair(
      client,
      upstream,
      this.mode === 'stalled',
      () => this.pairs.delete(pair),
      (chunk) => {
        for (const tap of this.taps) tap.scan(pair, chunk);
      },
    );
    this.pairs.add(pair);
  }

  private named(marker: string): Pair[] {
    return [...this.pairs].filter((pair) => pair.handshake.includes(marker));
  }
}

class Tap {
  count = 0;
  /** The last bytes of each connection's stream, where a match may have started. */
  private readonly tails = new WeakMap<Pair, Buffer>();

  constructor(private readonly pattern: Buffer) {}

  scan(pair: Pair, chunk: Buffer): void {
    const data = Buffer.concat([this.tails.get(pair) ?? Buffer.alloc(0), chunk]);
    for (let at = data.indexOf(this.pattern); at >= 0; at = data.indexOf(this.pattern, at + this.pattern.length)) this.count++;
    // Shorter than the pattern, so a match is never counted twice.
    this.tails.set(pair, data.subarray(Math.max(0, data.length - this.pattern.length + 1)));
  }
}

/** How much of a client's first bytes is kept to recognise its connection (the AMQP start-ok fits). */
const HANDSHAKE_BYTES = 4096;

class Pair {
  private readonly held: Array<{ to: net.Socket; chunk: Buffer }> = [];
  private done = false;
  /** The client's first bytes, as text: the AMQP handshake with its connection_name. */
  handshake = '';
  /** Hold only what the client sends. */
  holdSending = false;
  /** Hold only what the broker sends. */
  holdReceiving = false;

  constructor(
    private readonly client: net.Socket,
    private readonly upstream: net.Socket,
    public stalled: boolean,
    private readonly onGone: () => void,
    private readonly onClientData: (chunk: Buffer) => void,
  ) {
    client.on('data', (chunk: Buffer) => {
      if (this.handshake.length < HANDSHAKE_BYTES) this.handshake += chunk.toString('latin1', 0, HANDSHAKE_BYTES - this.handshake.length);
      this.onClientData(chunk);
      this.forward(upstream, chunk);
    });
    upstream.on('data', (chunk: Buffer) => this.forward(client, chunk));
    // Either side going away takes the other with it (the proxy keeps no half-dead pairs).
    client.on('close', () => this.destroy(false));
    upstream.on('close', () => this.destroy(false));
  }

  get heldFromClient(): number {
    return this.held.reduce((bytes, { to, chunk }) => bytes + (to === this.upstream ? chunk.length : 0), 0);
  }

  private forward(to: net.Socket, chunk: Buffer): void {
    if (this.done) return;
    if (this.stalled || (this.holdSending && to === this.upstream) || (this.holdReceiving && to === this.client))
      this.held.push({ to, chunk });
    else to.write(chunk);
  }

  flush(deliver = true): void {
    this.stalled = false;
    this.holdSending = false;
    this.holdReceiving = false;
    for (const { to, chunk } of this.held.splice(0)) if (deliver && !to.destroyed) to.write(chunk);
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
