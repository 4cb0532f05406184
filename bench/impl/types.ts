/** The one interface every implementation under test is driven through. */

/** A benchmark message: ~1 KB of JSON once serialized. */
export interface Msg {
  id: number;
  pad: string;
}

export type Handler = (payload: Msg) => unknown | Promise<unknown>;

export interface SetupOptions {
  url: string;
  /** Unique per child process; the adapter declares it (durable) or lets its library do so. */
  queue: string;
  prefetch: number;
  /** true: the consumer answers requests (S2, S3); false: one-way messages. */
  rpc: boolean;
  /** Called once per delivery; its result is the RPC reply. The adapter acks after it settles. */
  handler: Handler;
  /** delivery mode of what publishOne() sends */
  persistent: boolean;
  /** TCP_NODELAY on the connection (peers and raw); `ours` always runs with its own defaults. */
  noDelay: boolean;
  /**
   * S6 (ours): read TrackContext in the handler, or use a request-scoped handler class.
   * S1/S4 (raw): `wire` adds by hand what ours does per message (see impl/raw.ts).
   */
  variant: 'plain' | 'track' | 'scoped' | 'wire';
  /**
   * S8/S9: the queues consumed, each by a handler (consumer) of its own with `prefetch`, instead of
   * `queue` alone; an empty list makes a producer that consumes nothing (S8d).
   */
  queues?: string[];
  /** S9: the name the connection(s) show at the broker, to count their channels. */
  connectionName?: string;
  /**
   * S10: the type of the consumed queue(s); unset: classic (RabbitMQ's default). Each impl says it
   * its own way: raw, golevelup and Nest RMQ as the `x-queue-type` argument, ours as `queueType`.
   */
  queueType?: 'classic' | 'quorum';
}

export interface Adapter {
  setup(options: SetupOptions): Promise<void>;
  /** One-way message to `queue` (S8) or the setup's queue; resolves once the broker confirmed it. */
  publishOne(payload: Msg, queue?: string): Promise<unknown>;
  /** Request/reply over the queue; resolves with the handler's result. */
  request(payload: Msg): Promise<unknown>;
  /** The implementation's graceful shutdown (what an app's close() does). */
  close(): Promise<void>;
}
