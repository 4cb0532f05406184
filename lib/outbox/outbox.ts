import { CodecRegistry } from '../codec/codec-registry';
import { Inject, Injectable, type Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Encoded } from '../codec/codec-registry';
import { TrackContext } from '../context/track-context';
import type { SendOptions } from '../interfaces/send-options.interface';
import { MESSAGING_LOGGER, MESSAGING_OPTIONS, TELEMETRY } from '../messaging.constants';
import type { Telemetry } from '../telemetry/telemetry.interface';
import { EncodeError, InvalidArgumentError, MessagingConfigError } from '../messaging.errors';
import { MessagingLifecycle } from '../nest/messaging-lifecycle';
import { renamed, type ResolvedMessagingOptions } from '../messaging.options';
import type { PublishProperties } from '../transport/outgoing';
import { Publisher } from '../publisher/publisher';
import { checkSendOptions, sendProperties } from '../rpc/send-properties';
import { OutboxRelay } from './outbox-relay';
import { OutboxTable, outboxTableSql } from './outbox-table';
import { createOnce } from '../postgres/postgres';
import type { SqlExecutor } from '../interfaces/sql.interface';

/** What `Outbox.send`/`publish` take: the relay publishes later, so there is no per-call timeout or delay. */
export type OutboxSendOptions = Omit<SendOptions, 'timeoutMs' | 'delayMs'>;

/**
 * Messages that leave only if the caller's transaction commits. `send`/`publish` encode the
 * message and insert it through `client`, the connection of the caller's open transaction (a
 * `pg` client, or a TypeORM QueryRunner/EntityManager); nothing is published then. After COMMIT,
 * the relay of this instance (or any other) publishes the row with confirms and marks it sent;
 * after ROLLBACK there is no row. Needs `MessagingModule.forRoot({ outbox: { pool } })`.
 */
@Injectable()
export class Outbox implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly table?: OutboxTable;
  private relay?: OutboxRelay;

  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly publisher: Publisher,
    private readonly track: TrackContext,
    private readonly lifecycle: MessagingLifecycle,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
    private readonly codecs: CodecRegistry,
    @Inject(TELEMETRY) private readonly telemetry: Telemetry,
    @Inject(MESSAGING_LOGGER) private readonly logger: Logger,
  ) {
    if (options.outbox) this.table = new OutboxTable(options.outbox.table);
  }

  /** A command to a queue, sent once the transaction of `client` commits; resolves with its message id once written. */
  send(client: SqlExecutor, queue: string, payload: unknown, options: OutboxSendOptions = {}): Promise<string> {
    return this.write(client, '', renamed(this.options.queues, queue), payload, options, options.mandatory ?? true);
  }

  /** An event to an exchange, published once the transaction of `client` commits; resolves with its message id once written. */
  publish(client: SqlExecutor, exchange: string, routingKey: string, payload: unknown, options: OutboxSendOptions = {}): Promise<string> {
    return this.write(client, renamed(this.options.exchanges, exchange), routingKey, payload, options, options.mandatory ?? false);
  }

  /** Rows this instance's relay has published and marked sent. */
  get relayed(): number {
    return this.relay?.relayed ?? 0;
  }

  /** Rows this instance's relay has parked (their exchange was refused): they wait in the table for an operator. */
  get parked(): number {
    return this.relay?.parked ?? 0;
  }

  /** Creates the table if asked to (a database that cannot be reached fails startup), then starts the relay. */
  async onApplicationBootstrap(): Promise<void> {
    const { outbox } = this.options;
    if (!outbox || !this.table) return;
    if (outbox.createTable) await createOnce(outbox.pool, outbox.table, outboxTableSql(outbox.table));
    if (!outbox.relay) return;
    this.relay = new OutboxRelay(outbox, this.table, this.publisher, this.options, this.telemetry, this.logger);
    this.relay.start();
  }

  /**
   * After the handlers drained (what they write still goes through this relay), the batch in
   * flight is finished, before the publisher closes and before other modules (the app's pool)
   * are destroyed.
   */
  async onModuleDestroy(): Promise<void> {
    if (!this.relay) return;
    await this.lifecycle.drain();
    await this.relay.stop(this.options.shutdownTimeoutMs);
  }

  private async write(
    client: SqlExecutor,
    exchange: string,
    routingKey: string,
    payload: unknown,
    options: OutboxSendOptions & Pick<SendOptions, 'timeoutMs' | 'delayMs'>,
    mandatory: boolean,
  ): Promise<string> {
    const table = this.configured();
    checkOptions(options);
    checkText({ exchange, routingKey, messageId: options.messageId });
    let encoded: Encoded;
    try {
      encoded = await this.codecs.encode(payload, options.contentType);
    } catch (error) {
      throw new EncodeError(`Cannot encode the message for "${exchange || routingKey}": ${(error as Error).message}`, { cause: error });
    }
    const properties: PublishProperties = {
      ...sendProperties(options, mandatory, this.track, this.options),
      contentType: encoded.contentType,
      contentEncoding: encoded.contentEncoding,
    };
    await table.insert(client, { exchange, routingKey, content: encoded.content, properties });
    return properties.messageId;
  }

  private configured(): OutboxTable {
    if (!this.table) throw new MessagingConfigError('The Outbox needs a PostgreSQL pool: MessagingModule.forRoot({ outbox: { pool } })');
    return this.table;
  }
}

/** Refuses, before anything is written, what the broker would refuse later (and the relay retry forever). */
function checkOptions(options: OutboxSendOptions & Pick<SendOptions, 'timeoutMs' | 'delayMs'>): void {
  if (options.timeoutMs !== undefined)
    throw new InvalidArgumentError('timeoutMs', "left out: the relay publishes with the module's publishTimeoutMs", options.timeoutMs);
  if (options.delayMs !== undefined)
    throw new InvalidArgumentError('delayMs', 'left out: the outbox does not delay messages', options.delayMs);
  checkSendOptions(options);
}

/**
 * The row's text columns cannot hold a NUL character (PostgreSQL refuses it, and the caller's
 * transaction with it): refused here, naming the argument. Properties and headers may hold one
 * (see outbox-properties).
 */
function checkText(columns: Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(columns)) {
    if (value?.includes('\u0000'))
      throw new InvalidArgumentError(name, 'a string without NUL characters (an outbox row cannot hold them)', value);
  }
}
