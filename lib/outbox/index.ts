// The `nestjs-messaging/outbox` entry: the transactional outbox (it needs a `pg` Pool in `forRoot({ outbox })`).
export { Outbox } from './outbox';
export type { OutboxSendOptions } from './outbox';
export type { PgClient, PgPool, SqlExecutor, SqlResult } from '../interfaces/sql.interface';
export type { OutboxOptions } from '../interfaces/messaging-options.interface';
export { InjectOutbox, getOutboxToken } from './inject-outbox.decorator';
