import type { ExchangeKind } from '../transport.interface';
import { sameFieldValue } from './field-table';
import { inequivalent } from './refusals';
import { headersMatch, topicMatches } from './routing';

export interface ExchangeDeclaration {
  kind: ExchangeKind;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
}

interface Binding {
  queue: string;
  routingKey: string;
  args: Record<string, unknown>;
}

/** An exchange and its bindings to queues. */
export class MemoryExchange {
  private bindings: Binding[] = [];

  constructor(
    readonly name: string,
    readonly declaration: ExchangeDeclaration,
  ) {}

  get bindingCount(): number {
    return this.bindings.length;
  }

  /** Idempotent: the same (queue, key, arguments) is one binding. */
  bind(queue: string, routingKey: string, args: Record<string, unknown>): void {
    if (!this.hasBinding(queue, routingKey, args)) this.bindings.push({ queue, routingKey, args });
  }

  hasBinding(queue: string, routingKey: string, args: Record<string, unknown>): boolean {
    return this.bindings.some((b) => sameBinding(b, queue, routingKey, args));
  }

  unbind(queue: string, routingKey: string, args: Record<string, unknown>): void {
    this.remove((b) => sameBinding(b, queue, routingKey, args));
  }

  /** Whether a binding went. */
  unbindQueue(queue: string): boolean {
    return this.remove((b) => b.queue === queue);
  }

  private remove(which: (binding: Binding) => boolean): boolean {
    const before = this.bindings.length;
    this.bindings = this.bindings.filter((b) => !which(b));
    return this.bindings.length < before;
  }

  /** The queues a message reaches, each once however many of its bindings match. */
  route(routingKey: string, headers: Record<string, unknown> | undefined): Set<string> {
    const queues = new Set<string>();
    for (const b of this.bindings) {
      if (this.matches(b, routingKey, headers)) queues.add(b.queue);
    }
    return queues;
  }

  private matches(binding: Binding, routingKey: string, headers: Record<string, unknown> | undefined): boolean {
    switch (this.declaration.kind) {
      case 'direct':
        return binding.routingKey === routingKey;
      case 'topic':
        return topicMatches(binding.routingKey, routingKey);
      case 'fanout':
        return true;
      case 'headers':
        return headersMatch(binding.args, headers);
    }
  }
}

function sameBinding(b: Binding, queue: string, routingKey: string, args: Record<string, unknown>): boolean {
  if (b.queue !== queue || b.routingKey !== routingKey) return false;
  const keys = Object.keys(b.args);
  return keys.length === Object.keys(args).length && keys.every((k) => Object.hasOwn(args, k) && sameFieldValue(b.args[k], args[k]));
}

/** Refuses a redeclare that differs from the exchange as it is, in the order RabbitMQ checks. */
export function assertExchangeEquivalent(name: string, current: ExchangeDeclaration, requested: ExchangeDeclaration): void {
  const fields: Array<[string, unknown, unknown]> = [
    ['type', current.kind, requested.kind],
    ['durable', current.durable, requested.durable],
    ['auto_delete', current.autoDelete, requested.autoDelete],
    ['internal', current.internal, requested.internal],
  ];
  for (const [field, was, now] of fields) {
    if (was !== now) throw inequivalent(field, 'exchange', name, `'${now}'`, `'${was}'`);
  }
}
