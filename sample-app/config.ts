/**
 * Everything the app reads from its environment, read once at startup and validated, so a typo
 * in a compose file fails the container at once with a clear message instead of later.
 */
export type Role = 'api' | 'worker' | 'all';

export interface AppConfig {
  /** api: HTTP only; worker: handlers only; all: both in one process (the default). */
  role: Role;
  /** RabbitMQ, or (without AMQP_URL) the in-process broker, which only ROLE=all can use. */
  amqpUrl: string;
  /** Keep retrying until the broker answers (containers that start before RabbitMQ). */
  waitForBroker: boolean;
  port: number;
  /** A worker serves /health and /metrics on this port (none: no HTTP at all). The API serves them on `port`. */
  healthPort?: number;
  /** TRACING=console: spans printed to the console (an OpenTelemetry SDK with a console exporter). */
  tracing: boolean;
  /** Prefixes every queue and exchange name on the broker (through MessagingModule's rename maps). */
  queuePrefix: string;
  serviceName: string;
  prefetch: number;
  shutdownTimeoutMs: number;
  quoteTimeoutMs: number;
  gatherTimeoutMs: number;
  /** Simulated work per order, a random duration in [min, max] ms. */
  workMs: { min: number; max: number };
  /** Log one line per handled order and per handled message (off by default: it is noisy under load). */
  logEach: boolean;
  /** The tenants whose orders the workers take (an order with no tenant is always taken). */
  tenants: string[];
  /**
   * PostgreSQL for the workers' orders (and the outbox that announces them); none: orders are
   * kept in memory and `order.created` is published directly.
   */
  databaseUrl?: string;
}

/** Injection token of the AppConfig. */
export const APP_CONFIG = Symbol('APP_CONFIG');

const ROLES: Role[] = ['api', 'worker', 'all'];

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const role = (env.ROLE ?? 'all') as Role;
  if (!ROLES.includes(role)) throw new Error(`ROLE must be one of ${ROLES.join(', ')} (got "${env.ROLE}")`);
  return {
    role,
    amqpUrl: brokerUrl(env, role),
    waitForBroker: flag(env, 'AMQP_WAIT_FOR_BROKER'),
    port: int(env, 'PORT', 3000, 0, 65535),
    healthPort: env.HEALTH_PORT ? int(env, 'HEALTH_PORT', 0, 0, 65535) : undefined,
    tracing: tracingMode(env) === 'console',
    queuePrefix: env.QUEUE_PREFIX ?? '',
    serviceName: env.SERVICE_NAME || `orders-${role}`,
    prefetch: int(env, 'PREFETCH', 10, 1, 65535),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0),
    quoteTimeoutMs: int(env, 'QUOTE_TIMEOUT_MS', 2_000, 1),
    gatherTimeoutMs: int(env, 'GATHER_TIMEOUT_MS', 1_000, 1),
    workMs: range(env, 'WORK_MS', '5-20'),
    logEach: flag(env, 'LOG_EACH'),
    tenants: list(env, 'TENANTS', 'acme,globex'),
    databaseUrl: env.DATABASE_URL || undefined,
  };
}

/** The in-memory broker lives in one process: an API and a worker apart could never meet on it. */
function brokerUrl(env: NodeJS.ProcessEnv, role: Role): string {
  const url = env.AMQP_URL || IN_MEMORY;
  if (url === IN_MEMORY && role !== 'all') {
    throw new Error(`ROLE=${role} needs AMQP_URL (RabbitMQ): the in-memory broker serves one process, so only ROLE=all runs on it`);
  }
  return url;
}

export const IN_MEMORY = 'memory://';

function int(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max = 2 ** 31 - 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
  }
  return value;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  return ['1', 'true', 'yes'].includes((env[name] ?? '').toLowerCase());
}

/** TRACING: off (default) or console. */
function tracingMode(env: NodeJS.ProcessEnv): 'off' | 'console' {
  const mode = env.TRACING || 'off';
  if (mode !== 'off' && mode !== 'console') throw new Error(`TRACING must be "off" or "console" (got "${mode}")`);
  return mode;
}

/** "a,b,c": names of letters, digits and dashes. */
function list(env: NodeJS.ProcessEnv, name: string, def: string): string[] {
  const raw = env[name] ?? def;
  const items = raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (items.some((item) => !TENANT.test(item))) throw new Error(`${name} must be a comma-separated list of names (got "${raw}")`);
  return items;
}

/** What a tenant name may be (it travels in the x-track-tenant header). */
export const TENANT = /^[A-Za-z0-9-]{1,40}$/;

/** "10" or "5-20". */
function range(env: NodeJS.ProcessEnv, name: string, def: string): { min: number; max: number } {
  const raw = env[name] || def;
  const match = /^(\d+)(?:-(\d+))?$/.exec(raw);
  const min = Number(match?.[1]);
  const max = Number(match?.[2] ?? match?.[1]);
  if (!match || max < min) throw new Error(`${name} must be "N" or "MIN-MAX" milliseconds (got "${raw}")`);
  return { min, max };
}
