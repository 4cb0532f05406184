import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';
import { HEADER_REQUEST_ID, MESSAGING_OPTIONS, TELEMETRY } from '../messaging.constants';
import { MessagingError, NoContextError, TrackLimitError } from '../messaging.errors';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { isValidItem, isValidRequestId, TRACK_STORE, type TrackStore, writeTrackHeaders } from './track-store';

/**
 * A singleton view of the tracking data of the message (or HTTP request) being handled. It keeps
 * nothing itself: every read goes to the nestjs-cls store of the current async context, so
 * concurrent messages never see each other's values.
 */
/** What TrackContext needs of the telemetry: the trace id of the active span (see telemetry/). */
export interface TraceIdSource {
  traceId(): string | undefined;
}

@Injectable()
export class TrackContext {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly cls: ClsService,
    @Inject(MESSAGING_OPTIONS) private readonly options: Pick<ResolvedMessagingOptions, 'track'>,
    @Inject(TELEMETRY) private readonly telemetry: TraceIdSource,
  ) {}

  /** The x-request-id of the current message, or the id of the app's own CLS context. */
  get requestId(): string | undefined {
    return (this.store() ?? this.adopt())?.requestId;
  }

  /**
   * The OpenTelemetry trace id of the active span (in a handler: its CONSUMER span, in the
   * sender's trace), when an OpenTelemetry SDK traces this app; undefined otherwise.
   */
  get traceId(): string | undefined {
    return this.telemetry.traceId();
  }

  /** Id of the message being handled. */
  get messageId(): string | undefined {
    return this.store()?.messageId;
  }

  /** Id of the message that caused the one being handled (its sender's message id). */
  get causationId(): string | undefined {
    return this.store()?.causationId;
  }

  /** The x-track-<key> item of the current context. */
  get(key: string): string | undefined {
    return this.store()?.items.get(key);
  }

  /**
   * Sets an x-track-<key> item; every message sent from this context from now on carries it. At
   * most `track.maxItems` items: a new key beyond them throws TrackLimitError (replacing the value
   * of a key already set always works), so what a context carries stays well under AMQP's 64 KiB
   * header table.
   */
  set(key: string, value: string): void {
    const limits = this.options.track;
    if (typeof value !== 'string' || !isValidItem(key, value, limits)) {
      throw new MessagingError(
        `TrackContext.set("${String(key).slice(0, 80)}"): keys are letters, digits and _.:- up to ` +
          `${limits.maxKeyLength} characters; values strings up to ${limits.maxValueLength} bytes (UTF-8)`,
      );
    }
    const store = this.store() ?? this.adopt();
    if (!store) {
      throw new NoContextError(
        'TrackContext.set() was called outside a message handler or a nestjs-cls context (e.g. ClsModule middleware)',
      );
    }
    if (!store.items.has(key) && store.items.size >= limits.maxItems) {
      throw new TrackLimitError(
        `TrackContext.set("${key}"): this context already carries ${store.items.size} items, the most track.maxItems allows; ` +
          'replace one of them or raise the limit',
      );
    }
    store.items.set(key, value);
  }

  /** A snapshot of every item, e.g. for log lines. */
  items(): Record<string, string> {
    return Object.fromEntries(this.store()?.items ?? []) as Record<string, string>;
  }

  /**
   * Adds the headers that carry the current context into a message sent from it. Sent from no
   * context, the message starts a request of its own: `freshId` (the id just made for the message,
   * when there is one) or a new one is its request id.
   */
  addHeaders(headers: Record<string, unknown>, freshId?: string): Record<string, unknown> {
    const store = this.store() ?? this.adopt();
    if (store) writeTrackHeaders(store, headers);
    else headers[HEADER_REQUEST_ID] = freshId ?? randomUUID();
    return headers;
  }

  private store(): TrackStore | undefined {
    return this.cls.isActive() ? this.cls.get(TRACK_STORE) : undefined;
  }

  /**
   * Inside a CLS context the app started itself (HTTP middleware), the first use pins a store
   * there, so every message of that request shares its id.
   */
  private adopt(): TrackStore | undefined {
    if (!this.cls.isActive()) return undefined;
    const id: unknown = this.cls.getId();
    const store: TrackStore = { requestId: isValidRequestId(id, this.options.track) ? id : randomUUID(), items: new Map() };
    this.cls.set(TRACK_STORE, store);
    return store;
  }
}
