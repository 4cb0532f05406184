import type { Codec } from './interfaces/codec.interface';
import { mediaType, type ResolvedCompression } from './codec/codec-registry';
import { COMPRESSION_ALGORITHMS } from './codec/compression';
import type { IdempotencyStore } from './interfaces/idempotency-store.interface';
import type { ExchangeType, QueueType } from './interfaces/message-handler-options.interface';
import type { AsyncApiInfo, AsyncApiOptions, AsyncApiPublish } from './interfaces/asyncapi-options.interface';
import type {
  IdempotencyOptions,
  MessagingOptions,
  MetricsOptions,
  OutboxOptions,
  RetryPolicy,
  TlsOptions,
  TrackLimits,
} from './interfaces/messaging-options.interface';
import { type PgTable, pgTable } from './postgres/postgres';
import { DEFAULT_CONNECTION, HEADER_TRACK_PREFIX } from './messaging.constants';
import { MessagingConfigError } from './messaging.errors';
import { isMemoryUrl, maskUrlStrictly } from './util/url';

/** Options with every default filled in; what the rest of the library reads. */
export interface ResolvedMessagingOptions {
  /** The connection's name; DEFAULT_CONNECTION when forRoot has none. */
  name: string;
  urls: string[];
  serviceName: string;
  prefetch: number;
  rpcTimeoutMs: number;
  shutdownTimeoutMs: number;
  retry: Required<RetryPolicy> | false;
  registerHandlers: boolean;
  heartbeatSeconds: number;
  reconnect: { initialDelayMs: number; maxDelayMs: number; startupTimeoutMs: number };
  publishTimeoutMs: number;
  maxBufferedPublishes: number;
  maxInFlightPublishes: number;
  maxMessageBytes: number;
  /** Absent: no ceiling is checked (see checkPrefetchedBytes). */
  maxPrefetchedBytes?: number;
  maxRedeliveries: number;
  persistent: boolean;
  tls?: TlsOptions;
  track: { maxRequestIdLength: number; maxItems: number; maxKeyLength: number; maxValueLength: number };
  /** The app's own codecs, checked; the CodecRegistry provider adds the built-in ones. */
  codecs: Codec[];
  /** Absent: bodies are sent uncompressed. */
  compression?: ResolvedCompression;
  /** What the Telemetry provider records (tracing needs no option: an OpenTelemetry SDK turns it on). */
  metrics: MetricsOptions;
  /** False: handlers declare nothing and check that what they need exists. */
  declare: boolean;
  /** Type of the handler queues whose handler sets none. */
  queueType: QueueType;
  /** Names in decorators and calls -> names on the broker. */
  queues: Record<string, string>;
  exchanges: Record<string, string>;
  idempotency: ResolvedIdempotency;
  /** Absent: the Outbox is not enabled. */
  outbox?: ResolvedOutbox;
  asyncApi: ResolvedAsyncApi;
}

/** `asyncApi`, checked; its names are still the code's (the document applies the rename maps). */
export interface ResolvedAsyncApi {
  info?: AsyncApiInfo;
  server?: string;
  publishes: AsyncApiPublish[];
}

export interface ResolvedIdempotency {
  /** The app's store; absent: the IDEMPOTENCY_STORE provider makes a MemoryIdempotencyStore. */
  store?: IdempotencyStore;
  ttlMs: number;
  leaseMs: number;
  /** Longest wait for one store operation; past it the store counts as unreachable. */
  storeTimeoutMs: number;
  /** `idempotent` of handlers that do not set it. */
  default: boolean;
}

export interface ResolvedOutbox extends Required<Omit<OutboxOptions, 'table'>> {
  table: PgTable;
}

export const DEFAULT_RETRY: Required<RetryPolicy> = { attempts: 3, delaysMs: [1000, 5000] };

function fail(option: string, expected: string, got: unknown): never {
  // A URL object prints its whole href, password included: masked like a string.
  const shown = typeof got === 'string' || got instanceof URL ? JSON.stringify(maskUrlStrictly(String(got))) : String(got);
  throw new MessagingConfigError(`MessagingModule option "${option}" must be ${expected} (got ${shown})`);
}

function int(value: unknown, option: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return def;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(option, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function duration(value: unknown, option: string, def: number, allowInfinity = false): number {
  if (value === undefined) return def;
  if (allowInfinity && value === Infinity) return value;
  return int(value, option, def, 0, 2 ** 31 - 1);
}

function bool(value: unknown, option: string, def: boolean): boolean {
  if (value === undefined) return def;
  if (typeof value !== 'boolean') fail(option, 'true or false', value);
  return value;
}

function urls(uri: unknown): string[] {
  const list = Array.isArray(uri) ? uri : [uri];
  if (list.length === 0) fail('uri', 'an amqp:// or amqps:// URL or a non-empty list of them', '[]');
  if (list.length === 1 && typeof list[0] === 'string' && /^memory:\/\/[\w.-]*\/?$/.test(list[0])) return list;
  for (const u of list) {
    if (typeof u === 'string' && isMemoryUrl(u)) {
      fail('uri', 'either memory:// or memory://<name> alone (the in-process broker), or amqp(s):// URLs', u);
    }
    if (typeof u !== 'string' || !/^amqps?:\/\/[^/]/.test(u)) {
      fail('uri', 'an amqp:// or amqps:// URL or a list of them (or memory:// for the in-process broker)', u);
    }
    try {
      new URL(u);
    } catch {
      fail('uri', 'a valid URL', u);
    }
  }
  return list as string[];
}

/** The most tries a message gets, from a retry policy or by a handler's own `context.retry()`. */
export const MAX_TRIES = 1000;

/** Validates a handler's or the module's retry option; `option` names it in the error. */
export function resolveRetry(value: unknown, option: string, def: Required<RetryPolicy> | false): Required<RetryPolicy> | false {
  if (value === undefined) return def;
  if (value === false) return false;
  if (typeof value !== 'object' || value === null) fail(option, 'false or { attempts, delaysMs? }', value);
  const policy = value as RetryPolicy;
  const attempts = int(policy.attempts, `${option}.attempts`, NaN, 1, MAX_TRIES);
  const delays = policy.delaysMs ?? [];
  if (!Array.isArray(delays) || delays.some((d) => !Number.isInteger(d) || d < 0 || d > 2 ** 31 - 1)) {
    fail(`${option}.delaysMs`, 'an array of non-negative integers (milliseconds)', JSON.stringify(delays));
  }
  return { attempts, delaysMs: delays.length > 0 ? [...delays] : [0] };
}

const KNOWN = new Set([
  'name',
  'uri',
  'serviceName',
  'prefetch',
  'rpcTimeoutMs',
  'shutdownTimeoutMs',
  'retry',
  'registerHandlers',
  'heartbeatSeconds',
  'reconnect',
  'publishTimeoutMs',
  'maxBufferedPublishes',
  'maxInFlightPublishes',
  'maxMessageBytes',
  'maxPrefetchedBytes',
  'maxRedeliveries',
  'persistent',
  'tls',
  'track',
  'codecs',
  'compression',
  'declare',
  'queues',
  'exchanges',
  'idempotency',
  'outbox',
  'metrics',
  'queueType',
  'asyncApi',
]);

export function resolveOptions(options: MessagingOptions): ResolvedMessagingOptions {
  if (typeof options !== 'object' || options === null) {
    throw new MessagingConfigError('MessagingModule options must be an object with at least "uri"');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new MessagingConfigError(`MessagingModule has no option "${key}"`);
  }
  if (options.uri === undefined) throw new MessagingConfigError('MessagingModule option "uri" is required');
  const serviceName = options.serviceName ?? 'nestjs-messaging';
  if (typeof serviceName !== 'string' || serviceName.length === 0 || serviceName.length > 128) {
    fail('serviceName', 'a non-empty string of at most 128 characters', serviceName);
  }
  const reconnect = options.reconnect ?? {};
  if (options.tls !== undefined && (typeof options.tls !== 'object' || options.tls === null)) {
    fail('tls', 'an object { ca?, cert?, key?, passphrase? }', options.tls);
  }
  const resolvedTrack = trackLimits(options.track ?? {});
  const maxMessageBytes = int(options.maxMessageBytes, 'maxMessageBytes', 16 * 1024 * 1024, 1);
  return {
    name: connectionName(options.name),
    urls: urls(options.uri),
    serviceName,
    prefetch: int(options.prefetch, 'prefetch', 20, 1, 65535),
    rpcTimeoutMs: duration(options.rpcTimeoutMs, 'rpcTimeoutMs', 10_000),
    shutdownTimeoutMs: duration(options.shutdownTimeoutMs, 'shutdownTimeoutMs', 10_000),
    retry: resolveRetry(options.retry, 'retry', DEFAULT_RETRY),
    registerHandlers: bool(options.registerHandlers, 'registerHandlers', true),
    heartbeatSeconds: int(options.heartbeatSeconds, 'heartbeatSeconds', 10, 0, 3600),
    reconnect: {
      initialDelayMs: duration(reconnect.initialDelayMs, 'reconnect.initialDelayMs', 200),
      maxDelayMs: duration(reconnect.maxDelayMs, 'reconnect.maxDelayMs', 10_000),
      startupTimeoutMs: duration(reconnect.startupTimeoutMs, 'reconnect.startupTimeoutMs', 15_000, true),
    },
    publishTimeoutMs: duration(options.publishTimeoutMs, 'publishTimeoutMs', 30_000),
    maxBufferedPublishes: int(options.maxBufferedPublishes, 'maxBufferedPublishes', 10_000, 0),
    maxInFlightPublishes: int(options.maxInFlightPublishes, 'maxInFlightPublishes', 2048, 1),
    maxMessageBytes,
    maxPrefetchedBytes:
      options.maxPrefetchedBytes === undefined ? undefined : int(options.maxPrefetchedBytes, 'maxPrefetchedBytes', NaN, 1),
    maxRedeliveries: int(options.maxRedeliveries, 'maxRedeliveries', 5, 0),
    persistent: bool(options.persistent, 'persistent', true),
    tls: options.tls,
    track: resolvedTrack,
    codecs: codecs(options.codecs),
    compression: compression(options.compression),
    metrics: metrics(options.metrics),
    declare: bool(options.declare, 'declare', true),
    queueType: queueType(options.queueType, 'queueType', 'classic'),
    queues: renames(options.queues, 'queues'),
    exchanges: renames(options.exchanges, 'exchanges'),
    idempotency: idempotency(options.idempotency),
    outbox: outbox(options.outbox),
    asyncApi: asyncApi(options.asyncApi),
  };
}

/**
 * The bodies an instance's prefetched deliveries can hold at once: each handler queue's prefetch
 * (the broker sends no more unacked) times maxMessageBytes (nothing larger is accepted), summed.
 * With `maxPrefetchedBytes` set, startup fails when that sum exceeds it, naming every queue.
 */
export function checkPrefetchedBytes(queues: ReadonlyArray<{ queue: string; prefetch: number }>, options: ResolvedMessagingOptions): void {
  const { maxPrefetchedBytes: ceiling, maxMessageBytes } = options;
  const total = queues.reduce((sum, { prefetch }) => sum + prefetch * maxMessageBytes, 0);
  if (ceiling === undefined || total <= ceiling) return;
  const each = queues.map(({ queue, prefetch }) => `"${queue}" ${prefetch} × ${maxMessageBytes}`).join(', ');
  throw new MessagingConfigError(
    `MessagingModule option "maxPrefetchedBytes" (${ceiling}) is less than the ${total} bytes the handler queues may hold prefetched ` +
      `(prefetch × maxMessageBytes: ${each}): lower "prefetch" or "maxMessageBytes", or raise "maxPrefetchedBytes"`,
  );
}

/** Fails on a key the object option `option` does not have, e.g. a misspelt `idempotency.ttl`. */
function knownKeys(value: object, option: string, known: string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key))
      throw new MessagingConfigError(`MessagingModule option "${option}" has no "${key}" (it takes ${known.join(', ')})`);
  }
}

function idempotency(value: unknown): ResolvedIdempotency {
  if (value !== undefined && (typeof value !== 'object' || value === null))
    fail('idempotency', 'an object { store?, ttlMs?, leaseMs?, storeTimeoutMs?, default? }', value);
  const given = (value ?? {}) as IdempotencyOptions;
  knownKeys(given, 'idempotency', ['store', 'ttlMs', 'leaseMs', 'storeTimeoutMs', 'default']);
  const { store } = given;
  const isStore =
    typeof store === 'object' && store !== null && ['claim', 'complete', 'release'].every((m) => typeof (store as never)[m] === 'function');
  if (store !== undefined && !isStore)
    fail('idempotency.store', 'an IdempotencyStore (claim, complete, release), e.g. new RedisIdempotencyStore(redis)', store);
  return {
    store,
    ttlMs: int(given.ttlMs, 'idempotency.ttlMs', 24 * 60 * 60 * 1000, 1),
    leaseMs: int(given.leaseMs, 'idempotency.leaseMs', 60_000, 1, 2 ** 31 - 1),
    storeTimeoutMs: int(given.storeTimeoutMs, 'idempotency.storeTimeoutMs', 5_000, 1, 2 ** 31 - 1),
    default: bool(given.default, 'idempotency.default', false),
  };
}

function outbox(value: unknown): ResolvedOutbox | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) fail('outbox', 'an object { pool, table?, ... }', value);
  const given = value as OutboxOptions;
  knownKeys(given, 'outbox', ['pool', 'table', 'createTable', 'relay', 'batchSize', 'pollIntervalMs', 'retentionMs', 'queryTimeoutMs']);
  const { pool } = given;
  if (typeof pool !== 'object' || pool === null || typeof pool.query !== 'function' || typeof pool.connect !== 'function') {
    fail('outbox.pool', 'a pg Pool (new Pool(...) of the "pg" package)', pool);
  }
  return {
    pool,
    table: pgTable(given.table ?? 'messaging_outbox', 'MessagingModule option "outbox.table"'),
    createTable: bool(given.createTable, 'outbox.createTable', true),
    relay: bool(given.relay, 'outbox.relay', true),
    batchSize: int(given.batchSize, 'outbox.batchSize', 500, 1, 10_000),
    pollIntervalMs: int(given.pollIntervalMs, 'outbox.pollIntervalMs', 1_000, 1, 2 ** 31 - 1),
    retentionMs: int(given.retentionMs, 'outbox.retentionMs', 60 * 60 * 1000, 0),
    queryTimeoutMs: int(given.queryTimeoutMs, 'outbox.queryTimeoutMs', 10_000, 1, 2 ** 31 - 1),
  };
}

export const QUEUE_TYPES: readonly QueueType[] = ['quorum', 'classic'];
export const EXCHANGE_TYPES: readonly ExchangeType[] = ['topic', 'direct', 'fanout', 'headers'];

function queueType(value: unknown, option: string, def: QueueType): QueueType {
  if (value === undefined) return def;
  if (!QUEUE_TYPES.includes(value as QueueType)) fail(option, `'quorum' or 'classic'`, value);
  return value as QueueType;
}

/** A name used in code (decorators, RpcClient calls), as the module's rename map (`queues` / `exchanges`) has it on the broker. */
export function renamed(map: Record<string, string>, name: string): string {
  return Object.hasOwn(map, name) ? map[name] : name;
}

/** `{ nameInCode: nameOnTheBroker }`: both non-empty strings of at most 255 characters, as RabbitMQ allows. */
function renames(value: unknown, option: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(option, 'an object { nameInCode: nameOnTheBroker }', value);
  const map: Record<string, string> = Object.create(null);
  for (const [from, to] of Object.entries(value)) {
    if (typeof to !== 'string' || to.length === 0 || to.length > 255)
      fail(`${option}.${from}`, 'a non-empty name of at most 255 characters', to);
    map[from] = to;
  }
  return map;
}

/** Each codec complete, with a content type of its own (a built-in one's may be taken: it replaces it). */
function codecs(value: unknown): Codec[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail('codecs', 'an array of { contentType, encode, decode }', value);
  const seen = new Set<string>();
  return value.map((codec: Partial<Codec> | null, i) => {
    const option = `codecs[${i}]`;
    if (typeof codec !== 'object' || codec === null) fail(option, 'an object { contentType, encode, decode }', codec);
    if (typeof codec.contentType !== 'string' || !/^[^/;\s]+\/[^/;\s]+\s*(;.*)?$/.test(codec.contentType)) {
      fail(`${option}.contentType`, 'a media type such as "application/msgpack"', codec.contentType);
    }
    if (typeof codec.encode !== 'function') fail(`${option}.encode`, 'a function (value) => Buffer', codec.encode);
    if (typeof codec.decode !== 'function') fail(`${option}.decode`, 'a function (body: Buffer) => unknown', codec.decode);
    const type = mediaType(codec.contentType);
    if (seen.has(type)) fail(`${option}.contentType`, 'a content type no other codec has', codec.contentType);
    seen.add(type);
    return codec as Codec;
  });
}

function compression(value: unknown): ResolvedCompression | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null)
    fail('compression', "an object { algorithm: 'gzip' | 'deflate' | 'br', thresholdBytes? }", value);
  const { algorithm, thresholdBytes } = value as Record<string, unknown>;
  if (!(COMPRESSION_ALGORITHMS as readonly unknown[]).includes(algorithm)) {
    fail(
      'compression.algorithm',
      COMPRESSION_ALGORITHMS.map((name) => `"${name}"`)
        .join(', ')
        .replace(/, ([^,]*)$/, ' or $1'),
      algorithm,
    );
  }
  return {
    algorithm: algorithm as ResolvedCompression['algorithm'],
    thresholdBytes: int(thresholdBytes, 'compression.thresholdBytes', 1024, 0),
  };
}

/**
 * Most bytes a full set of x-track-* items may take in a header table: half of AMQP's 64 KiB, so
 * the request id, the module's own headers and the app's still fit beside them.
 */
export const MAX_TRACK_BYTES = 32 * 1024;
/** Per item in a table: key length byte, the "x-track-" prefix, type byte, value length. */
const TRACK_ITEM_OVERHEAD = 1 + HEADER_TRACK_PREFIX.length + 1 + 4;

function trackLimits(track: TrackLimits): ResolvedMessagingOptions['track'] {
  const limits = {
    maxRequestIdLength: int(track.maxRequestIdLength, 'track.maxRequestIdLength', 256, 1),
    maxItems: int(track.maxItems, 'track.maxItems', 64, 0),
    maxKeyLength: int(track.maxKeyLength, 'track.maxKeyLength', 64, 1),
    maxValueLength: int(track.maxValueLength, 'track.maxValueLength', 256, 1),
  };
  const fullSet = limits.maxItems * (TRACK_ITEM_OVERHEAD + limits.maxKeyLength + limits.maxValueLength);
  if (fullSet > MAX_TRACK_BYTES) {
    fail(
      'track',
      `limits whose full set of items fits in ${MAX_TRACK_BYTES} bytes of headers: ` +
        `maxItems x (${TRACK_ITEM_OVERHEAD} + maxKeyLength + maxValueLength) <= ${MAX_TRACK_BYTES}`,
      `${limits.maxItems} x (${TRACK_ITEM_OVERHEAD} + ${limits.maxKeyLength} + ${limits.maxValueLength}) = ${fullSet}`,
    );
  }
  return limits;
}

function metrics(value: unknown): MetricsOptions {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null) fail('metrics', 'an object { prometheus?, opentelemetry? }', value);
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (key !== 'prometheus' && key !== 'opentelemetry')
      fail(`metrics.${key}`, 'left out: "metrics" takes prometheus and opentelemetry', given[key]);
  }
  const { prometheus, opentelemetry } = given;
  const registry = (prometheus as { registry?: { getSingleMetric?: unknown } } | null)?.registry;
  if (prometheus !== undefined && typeof prometheus !== 'boolean' && typeof registry?.getSingleMetric !== 'function') {
    fail('metrics.prometheus', 'true, false or { registry } with a prom-client Registry', prometheus);
  }
  if (opentelemetry !== undefined && typeof opentelemetry !== 'boolean') fail('metrics.opentelemetry', 'true or false', opentelemetry);
  return given as MetricsOptions;
}

/** A connection's name as forRoot({ name }) gives it: its tokens and metric labels are made from it. */
export function connectionName(value: unknown): string {
  if (value === undefined) return DEFAULT_CONNECTION;
  if (typeof value !== 'string' || !/^[\w.-]{1,64}$/.test(value)) fail('name', 'a name of 1 to 64 letters, digits, "_", "." or "-"', value);
  return value;
}

/** An object that is not an array: what a JSON Schema or an options object is. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What the AsyncAPI document adds to what the handlers tell: its info, the server it names, what the app sends. */
function asyncApi(value: unknown): ResolvedAsyncApi {
  if (value === undefined) return { publishes: [] };
  if (!isPlainObject(value)) fail('asyncApi', 'an object { info?, server?, publishes? }', value);
  knownKeys(value, 'asyncApi', ['info', 'server', 'publishes']);
  const { info, server, publishes } = value as AsyncApiOptions;
  if (info !== undefined && !isPlainObject(info)) fail('asyncApi.info', 'an object { title?, version?, description? }', info);
  if (info) {
    knownKeys(info, 'asyncApi.info', ['title', 'version', 'description']);
    for (const key of ['title', 'version', 'description'] as const) text(info[key], `asyncApi.info.${key}`);
  }
  if (server !== undefined && (typeof server !== 'string' || !/^amqps?:\/\/[^/]/.test(server) || !URL.canParse(server))) {
    fail('asyncApi.server', 'the amqp:// or amqps:// URL of the broker the document names for this connection', server);
  }
  if (publishes !== undefined && !Array.isArray(publishes)) fail('asyncApi.publishes', `an array of ${PUBLISH_SHAPE}`, publishes);
  return { info: info && { ...info }, server, publishes: (publishes ?? []).map(publish) };
}

const PUBLISH_SHAPE = '{ exchange | queue, routingKey?, payload?, name?, summary? }';

function publish(value: unknown, i: number): AsyncApiPublish {
  const option = `asyncApi.publishes[${i}]`;
  if (!isPlainObject(value)) fail(option, `an object ${PUBLISH_SHAPE}`, value);
  const keys = ['exchange', 'exchangeType', 'queue', 'routingKey', 'messageType', 'payload', 'name', 'summary', 'description'];
  knownKeys(value, option, keys);
  const given = value as AsyncApiPublish;
  if ((given.exchange === undefined) === (given.queue === undefined)) {
    throw new MessagingConfigError(
      given.exchange === undefined
        ? `MessagingModule option "${option}" must name an "exchange" (what publish() sends to) or a "queue" (what send() and request() send to)`
        : `MessagingModule option "${option}" names both an "exchange" and a "queue": describe each in an entry of its own`,
    );
  }
  for (const key of ['exchange', 'queue'] as const) {
    const name = given[key];
    if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > 255))
      fail(`${option}.${key}`, 'a non-empty name of at most 255 characters', name);
  }
  for (const key of ['routingKey', 'exchangeType'] as const) {
    if (given[key] !== undefined && given.queue !== undefined)
      throw new MessagingConfigError(
        `MessagingModule option "${option}.${key}" needs an "exchange": a send to a queue is routed by its name`,
      );
  }
  if (given.routingKey !== undefined && typeof given.routingKey !== 'string') fail(`${option}.routingKey`, 'a string', given.routingKey);
  if (given.exchangeType !== undefined && !EXCHANGE_TYPES.includes(given.exchangeType))
    fail(`${option}.exchangeType`, EXCHANGE_TYPES.map((type) => `'${type}'`).join(', '), given.exchangeType);
  if (given.payload !== undefined && typeof given.payload !== 'function' && !isPlainObject(given.payload))
    fail(`${option}.payload`, 'a class or a JSON Schema object', given.payload);
  if (given.name !== undefined && (typeof given.name !== 'string' || !/^[\w.-]{1,128}$/.test(given.name)))
    fail(`${option}.name`, 'a name of 1 to 128 letters, digits, ".", "_" or "-"', given.name);
  for (const key of ['messageType', 'summary', 'description'] as const) text(given[key], `${option}.${key}`);
  return { ...given };
}

/** An optional text of the document: a non-empty string when given. */
function text(value: unknown, option: string): void {
  if (value !== undefined && (typeof value !== 'string' || value === '')) fail(option, 'a non-empty string', value);
}
