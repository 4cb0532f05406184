/**
 * Sends the newer features' messages: to the settle queue with a settlement mode, delayed sends,
 * to the batch handler, by message type and by routing key to the shared queues, to the
 * idempotent handlers (some twice on purpose, same id), and through the outbox in PostgreSQL
 * transactions (some rolled back on purpose).
 */
import type { Pool } from 'pg';
import type { Outbox, RpcClient } from '../lib';
import { inTransaction } from '../lib/postgres/postgres';
import { SETTLE_MODES, type Payload } from './handler-tries';
import { count, errorName, report } from './instance-report';
import { BATCH, FEATURES, names, TYPES, UNTAKEN_TYPE, type Delays, type Design, type Feature } from './protocol';

/** Shares of the messages: failing their first try, sent twice to an idempotent handler, rolled back in the outbox, of a type no handler takes. */
const FAIL_FIRST = 0.2;
const FAIL_FIRST_BATCH = 0.05; // one such message fails its whole batch
const RETRIED_IN_BATCH = 0.1; // settled alone by the batch handler: contexts[i].retry({ delayMs })
const SENT_TWICE = 0.3;
const ROLLED_BACK = 0.1;
const UNTAKEN = 0.1;

class RollbackByDesign extends Error {}

export class FeatureProducer {
  private readonly n: ReturnType<typeof names>;

  constructor(
    prefix: string,
    private readonly label: string,
    private readonly client: RpcClient,
    private readonly outbox: Outbox,
    private readonly pool: Pool,
    private readonly delays: Delays,
  ) {
    this.n = names(prefix);
  }

  /** One message of a feature drawn at random; never rejects (what failed is reported). */
  next(seq: number): Promise<void> {
    const feature = pick(FEATURES);
    const id = `${this.label}-${feature}${seq}`;
    const queue = this.n.feature(feature);
    const payload: Payload = { seq, failFirst: Math.random() < FAIL_FIRST, sentAt: Date.now() };
    switch (feature) {
      case 'settle': {
        payload.mode = pick(SETTLE_MODES);
        const design: Design | undefined = payload.mode === 'dead-letter' ? 'dead-letter' : payload.mode === 'drop' ? 'drop' : undefined;
        payload.failFirst &&= payload.mode === 'late';
        return this.record(feature, id, () => this.client.send(queue, payload, { messageId: id }), design);
      }
      case 'delayed':
        return this.record(feature, id, () => this.client.send(queue, payload, { messageId: id, delayMs: this.delays.sendMs }));
      case 'batch':
        return this.batchBurst(id, queue, seq);
      case 'typed': {
        const type = Math.random() < UNTAKEN ? UNTAKEN_TYPE : pick(TYPES);
        const design = type === UNTAKEN_TYPE ? 'dead-letter' : undefined;
        return this.record(feature, id, () => this.client.send(queue, payload, { messageId: id, type }), design);
      }
      case 'keyed':
        return this.record(feature, id, () => this.client.publish(this.n.keyedExchange, `k.${pick(TYPES)}`, payload, { messageId: id }));
      case 'idem-redis':
      case 'idem-pg':
        return this.record(feature, id, async () => {
          await this.client.send(queue, payload, { messageId: id });
          if (Math.random() < SENT_TWICE) {
            count(report().counters, `${feature} sent twice on purpose`);
            await this.client
              .send(queue, payload, { messageId: id })
              .catch(() => count(report().counters, `${feature} second send failed`));
          }
        });
      case 'outbox':
        return this.throughOutbox(id, queue, payload);
    }
  }

  /** Up to a batch's size at once, so the batch handler gets full batches too (one at a time, it would mostly get batches of one). */
  private async batchBurst(id: string, queue: string, seq: number): Promise<void> {
    const size = 1 + Math.floor(Math.random() * BATCH.size);
    await Promise.all(
      Array.from({ length: size }, (_, k) => {
        const payload: Payload = {
          seq,
          failFirst: Math.random() < FAIL_FIRST_BATCH,
          mode: Math.random() < RETRIED_IN_BATCH ? 'retry-delay' : undefined,
        };
        return this.record('batch', `${id}.${k}`, () => this.client.send(queue, payload, { messageId: `${id}.${k}` }));
      }),
    );
  }

  private async record(kind: Feature, id: string, send: () => Promise<unknown>, design?: Design): Promise<void> {
    const sentAt = Date.now();
    try {
      await send();
      report().confirmed.push({ kind, id, sentAt, confirmedAt: Date.now(), design });
    } catch (error) {
      report().rejected.push({ kind, id, sentAt, error: errorName(error) });
    }
  }

  /** Confirmed once COMMIT returned; rolled back on purpose; or failed, when whether it committed is known only from the table. */
  private async throughOutbox(id: string, queue: string, payload: Payload): Promise<void> {
    const sentAt = Date.now();
    const rollback = Math.random() < ROLLED_BACK;
    try {
      await inTransaction(this.pool, async (client) => {
        await this.outbox.send(client, queue, payload, { messageId: id });
        if (rollback) throw new RollbackByDesign();
      });
      report().confirmed.push({ kind: 'outbox', id, sentAt, confirmedAt: Date.now() });
    } catch (error) {
      report().outbox.push({ id, sentAt, outcome: error instanceof RollbackByDesign ? 'rolled-back' : errorName(error) });
    }
  }
}

function pick<T>(from: readonly T[]): T {
  return from[Math.floor(Math.random() * from.length)];
}
