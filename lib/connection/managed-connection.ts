import type { ConnectionRole } from '../interfaces/connection-role.interface';
import type { Telemetry } from '../telemetry/telemetry.interface';
import { EventEmitter } from 'node:events';
import type { Logger } from '@nestjs/common';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { BrokerRefusedError, BrokerUnreachableError, ConnectionLostError } from '../messaging.errors';
import { HandshakeRefusedError } from '../transport/transport.errors';
import { backoffDelay } from './backoff';
import { maskUrl, vhostOf } from '../util/url';
import { transportFor } from '../transport/transport-for';
import type { TransportChannel, TransportConnection } from '../transport/transport.interface';
import { within } from '../util/within';

/** What a managed connection tells the owners of its channels. */
export interface ManagedConnectionEvents {
  /** (Re)connected: open your channels on it. */
  connected: [TransportConnection];
  /** Lost; a reconnect is under way. */
  lost: [ConnectionLostError];
  /** The broker blocks publishing (a resource alarm), with its reason. */
  blocked: [string];
  unblocked: [];
}

/**
 * How long closing waits for the broker's close-ok before it destroys the socket: a connection the
 * broker blocks (resource alarm) or a stalled socket never answers, and shutdown must still end.
 */
const CLOSE_TIMEOUT_MS = 3_000;
/** How long one handshake may take before the next URL is tried. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * One AMQP connection that comes back by itself. Owners of channels listen to `connected` to
 * (re)build them and to `lost` to fail what was pending; nobody else touches the
 * transport connection's events (see ManagedConnectionEvents).
 */
export class ManagedConnection extends EventEmitter<ManagedConnectionEvents> {
  private connection?: TransportConnection;
  private closing = false;
  private closed?: Promise<void>;
  private nextUrl = 0;
  private wakeUp?: () => void;
  /** The connect loop running (startup or reconnect), if any: close() waits for it to end. */
  private connecting?: Promise<void>;
  /** Why the broker blocks publishing (resource alarm), or undefined. */
  blockedReason?: string;
  /** Connected once: a connection after that is a reconnect. */
  private wasConnected = false;

  constructor(
    private readonly options: Pick<ResolvedMessagingOptions, 'heartbeatSeconds' | 'reconnect' | 'serviceName' | 'tls' | 'urls'>,
    readonly role: ConnectionRole,
    private readonly logger: Logger,
    private readonly telemetry: Telemetry,
  ) {
    super();
    // One `connected` listener per handler: as many as the app has handlers, removed on stop.
    this.setMaxListeners(0);
  }

  get current(): TransportConnection | undefined {
    return this.connection;
  }

  /** Lost after it was up, and trying to come back. */
  get isReconnecting(): boolean {
    return this.wasConnected && !this.connection && !this.closing;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Connects at startup; fails with BrokerUnreachableError after reconnect.startupTimeoutMs. */
  async start(): Promise<void> {
    await this.run(Date.now() + this.options.reconnect.startupTimeoutMs);
  }

  async createChannel(options?: { confirms?: boolean }): Promise<TransportChannel> {
    return this.require().createChannel(options);
  }

  /**
   * Runs `work` on a channel of its own, closed afterwards: for declares, passive checks and gets
   * whose refusal (which closes the channel in AMQP) must not close a channel anyone else uses.
   */
  async withChannel<T>(work: (channel: TransportChannel) => Promise<T>): Promise<T> {
    const channel = await this.createChannel();
    try {
      return await work(channel);
    } finally {
      // Done once the channel is gone, answered or not: amqplib never settles a close that the loss
      // of its connection overtook, and this wait would hold its caller (e.g. the DeadLetters queue
      // of one .dlq, and every operation behind it) forever.
      await new Promise<void>((resolve) => {
        channel.once('close', () => resolve());
        channel.close().then(resolve, () => resolve());
      });
    }
  }

  /** Closes the connection, and the one a handshake in flight opens; bounded (see CLOSE_TIMEOUT_MS). Safe to call twice. */
  close(): Promise<void> {
    return (this.closed ??= this.closeNow());
  }

  private async closeNow(): Promise<void> {
    this.closing = true;
    this.wakeUp?.();
    const connection = this.connection;
    this.connection = undefined;
    // A handshake in flight ends in the connect loop, which releases what it opened. It is waited
    // for within the same bound: a handshake stalled longer fails by the connect timeout.
    const handshake =
      this.connecting &&
      within(
        this.connecting.catch(() => undefined),
        CLOSE_TIMEOUT_MS,
      );
    await Promise.all([connection && release(connection), handshake]);
  }

  private require(): TransportConnection {
    if (!this.connection) throw new ConnectionLostError(`The ${this.role} connection to RabbitMQ is down`);
    return this.connection;
  }

  private async connectLoop(deadline: number): Promise<void> {
    const { urls, reconnect } = this.options;
    const started = Date.now();
    let round = 0;
    let lastError: unknown;
    while (!this.closing) {
      const url = urls[this.nextUrl % urls.length];
      try {
        const connection = await this.open(url);
        if (this.closing) {
          // close() came during the handshake and could not see this connection: it goes here.
          await release(connection);
          break;
        }
        this.attach(connection, url);
        return;
      } catch (error) {
        // At startup a refused login or vhost is a mistake in the options: trying again cannot
        // help, so it fails now. Later (a password rotated under a running app) it is retried.
        if (error instanceof HandshakeRefusedError && !this.wasConnected) throw refusal(url, error);
        lastError = error;
        this.nextUrl++;
        this.logger.warn(`Cannot connect (${this.role}) to ${maskUrl(url)}: ${maskUrl(describe(error))}`);
      }
      // Try every node of a cluster once before waiting.
      if (this.nextUrl % urls.length !== 0) continue;
      if (Date.now() >= deadline) {
        throw new BrokerUnreachableError(
          `Cannot connect to RabbitMQ at ${urls.map(maskUrl).join(', ')} after ${Date.now() - started} ms: ` + maskUrl(describe(lastError)),
          { cause: lastError },
        );
      }
      // The last wait is cut short so the final try happens right at the deadline.
      await this.sleep(Math.min(backoffDelay(round++, reconnect.initialDelayMs, reconnect.maxDelayMs), deadline - Date.now()));
    }
    throw new ConnectionLostError('The messaging module is shutting down');
  }

  private open(url: string): Promise<TransportConnection> {
    return transportFor(url).connect(url, {
      heartbeatSeconds: this.options.heartbeatSeconds,
      connectionName: `${this.options.serviceName}:${this.role}`,
      timeoutMs: CONNECT_TIMEOUT_MS,
      tls: this.options.tls,
    });
  }

  private attach(connection: TransportConnection, url: string): void {
    this.connection = connection;
    this.blockedReason = undefined;
    connection.on('error', (error: Error) => {
      this.logger.warn(`Connection (${this.role}) error: ${maskUrl(error.message)}`);
    });
    connection.on('blocked', (reason: string) => {
      this.blockedReason = reason;
      this.logger.warn(`RabbitMQ blocks publishing (${reason})`);
      this.emit('blocked', reason);
    });
    connection.on('unblocked', () => {
      this.blockedReason = undefined;
      this.logger.log('RabbitMQ unblocked publishing');
      this.emit('unblocked');
    });
    connection.on('close', (error?: Error) => {
      if (this.connection !== connection) return;
      this.connection = undefined;
      if (this.closing) return;
      const reason = new ConnectionLostError(
        `The ${this.role} connection to ${maskUrl(url)} was lost: ${maskUrl(describe(error ?? 'closed'))}`,
        { cause: error },
      );
      this.logger.warn(reason.message);
      this.emit('lost', reason);
      this.reconnect();
    });
    this.logger.log(`Connected (${this.role}) to ${maskUrl(url)}`);
    if (this.wasConnected) this.telemetry.reconnected(this.role);
    this.wasConnected = true;
    this.emit('connected', connection);
  }

  private reconnect(): void {
    if (!this.connecting) this.run(Infinity).catch(() => undefined); // only ends by close()
  }

  private run(deadline: number): Promise<void> {
    const loop: Promise<void> = this.connectLoop(deadline).finally(() => {
      if (this.connecting === loop) this.connecting = undefined;
    });
    this.connecting = loop;
    return loop;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
  }
}

/** Closes a connection; when the broker does not answer in time, destroys its socket instead. */
async function release(connection: TransportConnection): Promise<void> {
  // Rejects when the connection is closed already: nothing left to release then.
  const answered = connection.close().then(
    () => true,
    () => true,
  );
  if (!(await within(answered, CLOSE_TIMEOUT_MS))) {
    connection.destroy(new Error(`RabbitMQ did not answer the close within ${CLOSE_TIMEOUT_MS} ms`));
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** Startup's error for a refused handshake: names the user and the vhost (never the password) and the fix. */
function refusal(url: string, error: HandshakeRefusedError): BrokerRefusedError {
  const parsed = new URL(url);
  const user = decodeURIComponent(parsed.username) || 'guest';
  const vhost = vhostOf(parsed);
  const where = `RabbitMQ at ${maskUrl(url)}`;
  const message =
    error.refused === 'login'
      ? `${where} refused the login of user "${user}" (403 ACCESS_REFUSED): check the user name and password in the "uri" option`
      : `${where} refused vhost "${vhost}" to user "${user}": it does not exist, or the user has no permission on it. Create it and ` +
        `grant access (rabbitmqctl add_vhost ${vhost}; rabbitmqctl set_permissions -p ${vhost} ${user} ".*" ".*" ".*"), or fix the vhost in the "uri" option`;
  return new BrokerRefusedError(message, { cause: error });
}
