// The `nestjs-messaging/idempotency` entry: the stores of `forRoot({ idempotency: { store } })`.
// None loads a driver: the Redis and PostgreSQL stores use the client the app passes them.
export { MemoryIdempotencyStore } from './memory-idempotency.store';
export type { MemoryIdempotencyStoreOptions } from './memory-idempotency.store';
export { RedisIdempotencyStore } from './redis-idempotency.store';
export type { RedisIdempotencyStoreOptions, RedisScriptClient } from './redis-idempotency.store';
export { PostgresIdempotencyStore } from './postgres-idempotency.store';
export type { PostgresIdempotencyStoreOptions } from './postgres-idempotency.store';
export type { IdempotencyStore, IdempotencyClaim } from '../interfaces/idempotency-store.interface';
export type { IdempotencyOptions } from '../interfaces/messaging-options.interface';
