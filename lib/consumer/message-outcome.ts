import type { Logger } from '@nestjs/common';
import { backoffDelay } from '../connection/backoff';
import {
  HEADER_ATTEMPTS,
  HEADER_COUNTERS_CHECK,
  HEADER_ERROR_MESSAGE,
  HEADER_ERROR_NAME,
  HEADER_ERROR_STACK,
  HEADER_ORIGINAL_QUEUE,
  HEADER_REDELIVERIES,
} from '../messaging.constants';
import { InvalidArgumentError, MessagingError, SettlementError, UnroutableError } from '../messaging.errors';
import { MAX_TRIES, type ResolvedMessagingOptions } from '../messaging.options';
import type { Publisher } from '../publisher/publisher';
import type { TrackContext } from '../context/track-context';
import type { ReplyRouter } from '../rpc/reply-router';
import { checkDuration } from '../rpc/send-properties';
import { MessageLogLine } from '../telemetry/message-log-line';
import { within } from '../util/within';
import type { AdhocRetryQueues } from '../topology/adhoc-retry-queues';
import type { Delivery, SettleDelivery } from './delivery';
import { DeliveryCopies, type RedeclareTopology } from './delivery-copies';
import { DeliveryReplies, truncate } from './delivery-replies';
import { deadLetterQueueName, type HandlerDefinition, policyDelays, retryQueueName } from '../topology/handler-definition';
import { type Decision, decide, type Ending, type OutcomeRules, policyDelay, settleOutcomeOf } from './outcome-rules';
import { type Counters, counterHeaders } from './retry-counters';
import { stackExcerpt } from './stack-excerpt';

export type { RedeclareTopology } from './delivery-copies';

/**
 * Carries out what the outcome rules (outcome-rules.ts) decide for a delivery: ack, reply, retry
 * later or dead-letter. Copies for retry and dead-letter are published mandatory and confirmed by
 * the broker before the original is acked, so a crash in between duplicates a message but never
 * loses one. A copy whose queue is gone (deleted by an operator) makes the topology be declared
 * again and is sent once more; when a copy cannot be published it is tried again, the original
 * held, after a back-off that grows while outcomes keep failing, so a broker that refuses every
 * copy is not asked in a hot loop.
 */
export class MessageOutcome {
  private readonly copies: DeliveryCopies;
  private readonly replies: DeliveryReplies;
  /** Outcomes in a row that could not be recorded; with a message's own tries, sets how long its next try waits. */
  private failuresInRow = 0;
  private readonly rules: OutcomeRules;
  /**
   * What is left to do for messages that left this consumer with their outcome unrecorded (their
   * channel went, or shutdown gave up on them), by message id: the decision, carried out when the
   * original comes back here without running its handler once more; only an ack when the copy went
   * out after the channel had gone. Bounded: past the limit the oldest are forgotten (their
   * handlers run again, as before).
   */
  private readonly undone = new Map<string, Decision | Promise<Decision>>();
  /** Delays with a retry queue of the policy's. */
  private readonly policyDelays: ReadonlySet<number>;

  constructor(
    private readonly definition: HandlerDefinition,
    publisher: Publisher,
    rpc: ReplyRouter,
    private readonly adhocQueues: AdhocRetryQueues,
    private readonly track: TrackContext,
    private readonly options: Pick<
      ResolvedMessagingOptions,
      'maxRedeliveries' | 'publishTimeoutMs' | 'reconnect' | 'persistent' | 'serviceName'
    >,
    private readonly logger: Logger,
  ) {
    this.rules = { retry: definition.retry, maxRedeliveries: options.maxRedeliveries, maxTries: MAX_TRIES };
    this.policyDelays = new Set(policyDelays(definition.retry));
    this.copies = new DeliveryCopies(definition, publisher, options, logger);
    this.replies = new DeliveryReplies(publisher, rpc, track, options, definition.format, (delivery, replyTo, failure) =>
      this.log(delivery, 'warn', `could not reply to ${replyTo}: ${failure.message}`),
    );
  }

  /** Set once by the consumer: how a queue found missing is declared again. */
  useTopology(redeclare: RedeclareTopology): void {
    this.copies.useTopology(redeclare);
  }

  /**
   * The handler settled its message itself (MessageContext.ack & co.): that decides the outcome,
   * now; what the handler then returns or throws no longer counts. Throws SettlementError when
   * the message is settled already or its handler has returned or thrown (the outcome is being
   * recorded: a second one would settle its delivery tag twice, which closes the channel),
   * InvalidArgumentError for a retry delay that is not allowed; otherwise never rejects.
   */
  readonly settle: SettleDelivery = (delivery, settlement, attempt) => {
    const { id } = delivery;
    if (delivery.settled) throw new SettlementError(`The message ${id} is settled already: settle it once`);
    if (delivery.ended)
      throw new SettlementError(`The message ${id} was settled when its handler returned or threw: settle it before that`);
    if (settlement.kind === 'retry') this.checkRetryDelay(settlement.delayMs, attempt);
    delivery.settled = delivery.abandoned
      ? Promise.resolve()
      : (this.carryOut(delivery, decide(this.rules, this.facts(delivery, attempt), { kind: 'settled', settlement })) ?? Promise.resolve());
    return delivery.settled;
  };

  /** Acks at once (the common case), or replies first when the message asks for a reply. */
  succeeded(delivery: Delivery, result: unknown, _attempt?: number): Promise<void> | void {
    delivery.ended = true;
    if (delivery.settled) return delivery.settled;
    if (delivery.abandoned) return;
    if (!delivery.msg.properties.replyTo) return delivery.ack();
    return this.carryOut(delivery, { kind: 'reply' }, result);
  }

  failed(delivery: Delivery, error: unknown, attempt: number): Promise<void> | void {
    delivery.ended = true;
    if (delivery.settled) return delivery.settled;
    if (delivery.abandoned) return;
    return this.decideAndCarryOut(delivery, attempt, { kind: 'threw', error: readableError(error) });
  }

  /**
   * A redelivered message had no outcome last time (its consumer died or lost its channel).
   * It goes back to the queue with a counter, and to the dead-letter queue once the counter
   * passes maxRedeliveries, so a message that kills every consumer cannot loop forever.
   */
  redelivered(delivery: Delivery, attempt: number): Promise<void> | void {
    delivery.ended = true;
    return this.decideAndCarryOut(delivery, attempt, { kind: 'redelivered', redeliveries: delivery.counters.redeliveries });
  }

  /**
   * Shutdown gave up waiting for this delivery's handler. Closing the channel would requeue it
   * marked redelivered, and the next instance would count that against maxRedeliveries; a copy
   * with its counters as they are goes back to the queue instead. Bounded by `timeoutMs`: if the
   * copy is not confirmed by then, the broker requeues the original when the channel closes.
   * An outcome whose copy is in flight (a retry or dead-letter copy) is waited for instead, so the
   * message ends in one place: confirmed, the original is acked; failed, it is put back.
   */
  async putBack(delivery: Delivery, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (
      delivery.recording &&
      (await within(
        delivery.recording.then(() => true),
        timeoutMs,
      )) === undefined
    ) {
      this.log(delivery, 'warn', 'its outcome was not confirmed before shutdown; RabbitMQ requeues it as redelivered');
      return;
    }
    if (delivery.acked) return;
    try {
      await this.copyUnchanged(delivery, Math.max(0, deadline - Date.now()));
      delivery.ack();
    } catch (error) {
      this.log(delivery, 'warn', `could not be put back unchanged (${asError(error).message}); RabbitMQ requeues it as redelivered`);
    }
  }

  /**
   * Back to its queue through no fault of its own (e.g. its idempotency store is unreachable). Not
   * requeued by the broker: that marks it redelivered, and another instance, which cannot know why
   * it came back, would count it against maxRedeliveries. A copy with its counters as they are is
   * confirmed, then the original acked; if the copy fails, the broker requeues it (and this
   * instance excuses it when it comes back here).
   */
  sendBack(delivery: Delivery): Promise<void> {
    delivery.outcome = 'requeued';
    const recording = this.copyUnchanged(delivery).then(
      () => delivery.ack(),
      (error: unknown) => {
        this.log(delivery, 'warn', `could not be sent back unchanged (${asError(error).message}); RabbitMQ requeues it as redelivered`);
        if (!delivery.abandoned) delivery.requeue();
      },
    );
    delivery.recording = recording;
    return recording;
  }

  /**
   * A message whose outcome could not be recorded came back: its decision is carried out again,
   * and true returned; false for any other message.
   */
  resume(delivery: Delivery): Promise<void> | false {
    // Nearly always nothing is remembered: no lookup on the path of every message then. Only the
    // original comes back redelivered; a later copy with its message id (a retry) is a new try.
    if (this.undone.size === 0 || !delivery.msg.fields.redelivered) return false;
    const id = delivery.msg.properties.messageId;
    const left = id === undefined ? undefined : this.undone.get(id);
    if (!left) return false;
    this.undone.delete(id!);
    delivery.ended = true;
    // Back while its earlier try was still in flight: what is left to do is known once that try ends.
    if (left instanceof Promise) return left.then((decision) => this.carryOut(delivery, decision));
    return this.carryOut(delivery, left) ?? Promise.resolve();
  }

  private decideAndCarryOut(delivery: Delivery, attempt: number, ending: Ending): Promise<void> | void {
    return this.carryOut(delivery, decide(this.rules, this.facts(delivery, attempt), ending));
  }

  private facts(delivery: Delivery, attempt: number) {
    return { attempt, expectsReply: delivery.msg.properties.replyTo !== undefined && delivery.msg.properties.replyTo !== '' };
  }

  /** Carries out a decision: what needs a copy or a reply is recorded first, then the original is settled. */
  private carryOut(delivery: Delivery, decision: Decision, result?: unknown): Promise<void> | void {
    const outcome = settleOutcomeOf(decision);
    switch (decision.kind) {
      case 'ack':
        return delivery.ack();
      case 'requeue':
        return delivery.requeue();
      case 'discard':
        return delivery.discard();
      case 'reply':
        if (this.replies.isDirect(delivery))
          return this.answerDirect(delivery, outcome, decision.error ? undefined : result, decision.error);
        return this.record(delivery, outcome, this.answer(delivery, decision.error ? undefined : result, decision.error));
      case 'retry':
      case 'deadLetter':
      case 'countReturn':
        this.announce(delivery, decision);
        return this.record(delivery, outcome, this.workFor(delivery, decision), decision);
    }
  }

  /** Logs a retry or a dead letter once, when decided (not on every try of a copy the broker refuses). */
  private announce(delivery: Delivery, decision: Extract<Decision, { kind: 'retry' | 'deadLetter' | 'countReturn' }>): void {
    if (decision.kind === 'retry' && decision.error) {
      const tries = this.definition.retry ? ` of ${this.definition.retry.attempts}` : '';
      this.log(
        delivery,
        'warn',
        `failed on try ${decision.attempts}${tries} (${describe(decision.error)}); retrying in ${decision.delayMs} ms`,
      );
    }
    if (decision.kind === 'deadLetter') {
      const level = decision.by === 'handler' ? 'warn' : 'error';
      this.log(delivery, level, `${deadLetterCause(decision)}; moved to ${deadLetterQueueName(this.definition)}`);
    }
  }

  /** Publishes, confirmed, the copy a decision needs: tried again while the broker refuses it. */
  private workFor(delivery: Delivery, decision: Extract<Decision, { kind: 'retry' | 'deadLetter' | 'countReturn' }>): () => Promise<void> {
    switch (decision.kind) {
      case 'retry':
        return () => this.retry(delivery, decision.delayMs, { ...delivery.counters, attempts: decision.attempts });
      case 'deadLetter': {
        // A reply that fails once its letter is confirmed is tried again alone: one letter, not one per try.
        let lettered = false;
        const reply = decision.reply ? this.answer(delivery, undefined, decision.error, true) : undefined;
        return async () => {
          if (!lettered) await this.deadLetter(delivery, decision.error, decision.attempts);
          lettered = true;
          await reply?.();
        };
      }
      case 'countReturn':
        return () =>
          this.copies.copyTo(
            delivery,
            this.definition.queue,
            this.countersHeaders(delivery, { ...delivery.counters, redeliveries: decision.redeliveries }),
          );
    }
  }

  /** A retry copy: straight back (no delay), or through the retry queue of its delay. */
  private async retry(delivery: Delivery, delayMs: number, counters: Counters): Promise<void> {
    const headers = this.countersHeaders(delivery, counters);
    if (delayMs <= 0) return this.copies.copyTo(delivery, this.definition.queue, headers);
    if (this.policyDelays.has(delayMs)) return this.copies.copyTo(delivery, retryQueueName(this.definition, delayMs), headers);
    const queue = await this.adhocQueues.forDelay(delayMs, this.options.publishTimeoutMs);
    try {
      await this.copies.copyTo(delivery, queue, headers, { redeclare: false });
    } catch (error) {
      if (!(error instanceof UnroutableError)) throw error;
      // Deleted since it was declared: declared again, the copy sent once more.
      this.adhocQueues.forget(delayMs);
      await this.copies.copyTo(delivery, await this.adhocQueues.forDelay(delayMs, this.options.publishTimeoutMs), headers, {
        redeclare: false,
      });
    }
  }

  /**
   * `context.retry({ delayMs })`: a whole number of milliseconds (0: at once); with `declare:
   * false`, only a delay with a retry queue of the policy's (nothing else may be declared), also
   * when the delay is the policy's own for this try (a policy of one try has no retry queue).
   */
  private checkRetryDelay(requested: number | undefined, attempt: number): void {
    checkDuration('delayMs', requested, 0);
    const delayMs = requested ?? policyDelay(this.rules, attempt);
    if (!this.definition.declare && delayMs > 0 && !this.policyDelays.has(delayMs)) {
      const delays = [...this.policyDelays].join(', ') || 'none';
      throw new InvalidArgumentError(
        'delayMs',
        `0 or a delay of ${this.definition.name}'s retry policy (${delays}): with "declare: false" no other retry queue is declared`,
        delayMs,
      );
    }
  }

  /**
   * Acks once `work` (its copies and replies) is confirmed. While the broker refuses it, the
   * message stays with this consumer and `work` is tried again after a back-off: given back, it
   * would come marked redelivered to another instance, which cannot know why and would count it
   * against maxRedeliveries (and run its handler again). It leaves without an outcome only when
   * its channel goes (the broker has it back) or shutdown gives up on it (close() puts it back);
   * then what is left of `decision` (when given) is remembered, to be done if it comes back here.
   */
  private record(delivery: Delivery, outcome: Delivery['outcome'], work: () => Promise<void>, decision?: Decision): Promise<void> {
    delivery.outcome = outcome;
    let inFlight = work();
    // The moment its channel goes, the broker has the original back and may deliver it here again
    // at once: it is excused (not counted) then, and what is left to do is what the try in flight
    // leaves: only the ack if that try is confirmed, the whole decision if not.
    delivery.release = () => {
      if (decision)
        this.remember(
          delivery,
          inFlight.then(ACK_ONLY, () => decision),
        );
      delivery.requeue();
    };
    const recording = inFlight.then(
      () => this.recorded(delivery),
      (error: unknown) => this.tryAgain(delivery, error, decision, () => (inFlight = work())),
    );
    delivery.recording = recording;
    return recording;
  }

  private recorded(delivery: Delivery): void {
    delivery.release = undefined;
    this.failuresInRow = 0;
    // Gone meanwhile: released already (see `record`); nothing to ack on a closed channel.
    if (!delivery.channelGone) delivery.ack();
  }

  private async tryAgain(delivery: Delivery, error: unknown, decision: Decision | undefined, again: () => Promise<void>): Promise<void> {
    const { initialDelayMs, maxDelayMs } = this.options.reconnect;
    for (let tries = 0; !delivery.channelGone; tries++) {
      // Its own tries count too: other messages' copies going through do not shorten its wait.
      const delay = backoffDelay(Math.max(tries, this.failuresInRow++), initialDelayMs, maxDelayMs);
      this.log(delivery, 'error', `outcome could not be recorded (${asError(error).message}); trying again in ${delay} ms`);
      await delivery.hold(delay);
      if (delivery.channelGone) return;
      if (delivery.abandoned) {
        // close() puts it back; its decision is carried out if it comes back here.
        delivery.release = undefined;
        if (decision) this.remember(delivery, decision);
        return;
      }
      try {
        await again();
      } catch (failure) {
        error = failure;
        continue;
      }
      return this.recorded(delivery);
    }
  }

  private remember(delivery: Delivery, decision: Decision | Promise<Decision>): void {
    const id = delivery.msg.properties.messageId;
    if (id === undefined) return;
    this.undone.delete(id);
    this.undone.set(id, decision);
    if (this.undone.size > REMEMBERED_UNDONE) this.undone.delete(this.undone.keys().next().value!);
  }

  private deadLetter(delivery: Delivery, error: Error, attempts: number): Promise<void> {
    return this.copies.copyTo(
      delivery,
      deadLetterQueueName(this.definition),
      {
        [HEADER_ERROR_NAME]: error.name,
        [HEADER_ERROR_MESSAGE]: truncate(error.message),
        [HEADER_ERROR_STACK]: stackExcerpt(error),
        // For people to read, not to count on: without a check, a letter moved back by hand gets its full policy.
        [HEADER_ATTEMPTS]: attempts,
        [HEADER_REDELIVERIES]: delivery.counters.redeliveries || undefined,
        [HEADER_COUNTERS_CHECK]: undefined,
        [HEADER_ORIGINAL_QUEUE]: this.definition.baseQueue,
      },
      { keepForever: true, keepDeaths: true },
    );
  }

  /** A copy of `delivery` to its own queue, its counters as they are, confirmed within `timeoutMs` (default publishTimeoutMs). */
  private copyUnchanged(delivery: Delivery, timeoutMs?: number): Promise<void> {
    return this.copies.copyTo(delivery, this.definition.queue, this.countersHeaders(delivery, delivery.counters), { timeoutMs });
  }

  /** Counters for a copy of `delivery` (the copy keeps its message id, see copy()). */
  private countersHeaders(delivery: Delivery, counters: Counters): Record<string, unknown> {
    return counterHeaders(this.definition.baseQueue, delivery.id, counters);
  }

  /**
   * A reply to direct reply-to has no confirm to wait for (the caller's own timeout covers its
   * loss): written, the request's ack is handed to the batcher in the same tick, with no promise in
   * between.
   */
  private answerDirect(delivery: Delivery, outcome: Delivery['outcome'], result: unknown, error?: Error): void {
    this.replies.sendDirect(delivery, result, error);
    this.failuresInRow = 0;
    delivery.outcome = outcome;
    delivery.ack();
  }

  /**
   * The work of a reply; when the named reply queue does not exist nobody can receive the answer,
   * so the request is kept in the dead-letter queue with the reason (to be replayed), not dropped;
   * unless `lettered`: its decision put it there already. Found unroutable once, the reply is not
   * sent (nor logged) again when a later try of the outcome only has the letter left to write.
   */
  private answer(delivery: Delivery, result: unknown, error?: Error, lettered = false): () => Promise<void> {
    let unroutable: UnroutableError | undefined;
    return async () => {
      if (!unroutable) {
        try {
          return await this.replies.send(delivery, result, error);
        } catch (failure) {
          if (!(failure instanceof UnroutableError)) throw failure;
          unroutable = failure;
          const letter = lettered ? 'its dead letter is in' : 'moved to';
          this.log(delivery, 'error', `could not be answered (${failure.message}); ${letter} ${deadLetterQueueName(this.definition)}`);
          delivery.outcome = 'dead_lettered';
        }
      }
      if (!lettered) await this.deadLetter(delivery, unroutable, delivery.counters.attempts + 1);
    };
  }

  private log(delivery: Delivery, level: 'warn' | 'error', text: string): void {
    const { name, queue } = this.definition;
    this.logger[level](new MessageLogLine(`${name} message ${delivery.id} ${text}`, queue, delivery.id, this.track.requestId, name));
  }
}

/** What is left when a message's copy went out after its channel did (see `undone`). */
const ACK_ONLY = (): Decision => ({ kind: 'ack' });

/** How many decisions that could not be recorded one handler remembers (see `undone`). */
const REMEMBERED_UNDONE = 10_000;

function describe(error: Error): string {
  return `${error.name}: ${error.message}`;
}

function deadLetterCause(decision: Extract<Decision, { kind: 'deadLetter' }>): string {
  switch (decision.by) {
    case 'failure':
      return `failed on try ${decision.attempts} (${describe(decision.error)})`;
    case 'handler':
      return `dead-lettered by its handler (${decision.error.message})`;
    case 'limit':
      return decision.error.message;
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * What a handler threw, as an Error whose name, message and stack can be read. Everything after
 * reads them (the log line, a retry's or dead letter's headers, the reply): an error of the app's
 * own that throws when read (a getter), or a thrown value that cannot become a string, would
 * throw there, and the message would never be settled. Such a failure is replaced by one saying so.
 */
function readableError(thrown: unknown): Error {
  try {
    const error = asError(thrown);
    [error.name, error.message, error.stack].forEach(String);
    return error;
  } catch {
    return new MessagingError('The handler failed with an error whose name, message or stack cannot be read');
  }
}
