/**
 * AMQP field tables (headers, queue arguments, binding arguments) as amqplib encodes and decodes
 * them. A message's headers cross the wire on a real broker, so here they are copied the same
 * way: a consumer never shares an object with its publisher, undefined entries vanish, typed
 * values (`{ '!': 'int', value: 5 }`) arrive as plain numbers, timestamps stay typed.
 */

type Table = Record<string, unknown>;

/** amqplib's encoding buffer for one header table. */
export const MAX_TABLE_BYTES = 65_536;

/** A header table that amqplib could not encode (over 64 KiB): nothing was published. */
export class TableTooLargeError extends RangeError {
  constructor(readonly bytes: number) {
    super(`Encoded field table (headers or arguments) exceeds the ${MAX_TABLE_BYTES} byte encoding buffer (${bytes} bytes)`);
    this.name = 'TableTooLargeError';
  }
}

/** A value amqplib has no encoding for (a function, a symbol, a bigint...). */
export class UnencodableValueError extends TypeError {
  constructor(type: string) {
    super(`Unknown type to encode: ${type}`);
    this.name = 'UnencodableValueError';
  }
}

interface Typed {
  '!': string;
  value: unknown;
}

function isTyped(value: unknown): value is Typed {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) && Object.hasOwn(value, '!');
}

/** The table as a consumer would decode it; throws like amqplib when it cannot be encoded. */
export function wireCopy(table: Table): Table {
  const bytes = tableSize(table);
  if (bytes > MAX_TABLE_BYTES) throw new TableTooLargeError(bytes);
  return copyTable(table);
}

/** A decoded copy without the size check: the broker itself has no 64 KiB limit (x-death may grow a table past it). */
export function copyTable(table: Table): Table {
  const copy: Table = {};
  // for-in, as amqplib's encoder: inherited keys are sent too.
  for (const key in table) {
    const value = table[key];
    if (value !== undefined) copy[key] = copyValue(value);
  }
  return copy;
}

function copyValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Buffer.isBuffer(value)) return Buffer.from(value);
  if (Array.isArray(value)) return value.map(copyValue);
  if (isTyped(value)) {
    return value['!'] === 'timestamp' || value['!'] === 'decimal' ? { '!': value['!'], value: copyValue(value.value) } : value.value;
  }
  return copyTable(value as Table);
}

function tableSize(table: Table): number {
  let size = 4;
  for (const key in table) {
    if (table[key] === undefined) continue;
    size += 1 + Buffer.byteLength(key) + valueSize(table[key]);
  }
  return size;
}

function valueSize(value: unknown): number {
  const type = wireType(value);
  const payload = isTyped(value) ? value.value : value;
  switch (type) {
    case 'longstr':
      return 1 + 4 + Buffer.byteLength(payload as string);
    case 'void':
      return 1;
    case 'array':
      return 1 + 4 + (payload as unknown[]).reduce<number>((sum, item) => sum + valueSize(item), 0);
    case 'binary':
      return 1 + 4 + (payload as Buffer).length;
    case 'table':
      return 1 + tableSize(payload as Table);
    case 'bool':
    case 'byte':
    case 'unsignedbyte':
      return 2;
    case 'short':
    case 'unsignedshort':
      return 3;
    case 'signedint':
    case 'unsignedint':
    case 'float':
      return 5;
    case 'decimal':
      return 6;
    default:
      return 9;
  }
}

const TYPED_NAMES: Record<string, string> = {
  int8: 'byte',
  byte: 'byte',
  uint8: 'unsignedbyte',
  unsignedbyte: 'unsignedbyte',
  int16: 'short',
  short: 'short',
  uint16: 'unsignedshort',
  unsignedshort: 'unsignedshort',
  int32: 'signedint',
  int: 'signedint',
  uint32: 'unsignedint',
  unsignedint: 'unsignedint',
  int64: 'long',
  long: 'long',
  float64: 'double',
  double: 'double',
  float: 'float',
  timestamp: 'timestamp',
  decimal: 'decimal',
};

/** RabbitMQ's name for the type amqplib would encode the value as. */
export function wireType(value: unknown): string {
  if (isTyped(value)) {
    const name = TYPED_NAMES[value['!']];
    if (!name) throw new UnencodableValueError(value['!']);
    return name;
  }
  switch (typeof value) {
    case 'string':
      return 'longstr';
    case 'boolean':
      return 'bool';
    case 'number':
      return integerType(value);
    case 'object':
      if (value === null) return 'void';
      if (Array.isArray(value)) return 'array';
      return Buffer.isBuffer(value) ? 'binary' : 'table';
    default:
      throw new UnencodableValueError(typeof value);
  }
}

function integerType(n: number): string {
  const floating = n >= 0x8000000000000000 || (Math.abs(n) < 0x4000000000000 && Math.floor(n) !== n);
  if (floating) return 'double';
  if (n >= -128 && n < 128) return 'byte';
  if (n >= -0x8000 && n < 0x8000) return 'short';
  if (n >= -0x80000000 && n < 0x80000000) return 'signedint';
  return 'long';
}

const NUMERIC_CLASS: Record<string, string> = {
  byte: 'int',
  short: 'int',
  signedint: 'int',
  long: 'int',
  decimal: 'int',
  unsignedbyte: 'int',
  unsignedshort: 'int',
  unsignedint: 'int',
  float: 'float',
  double: 'float',
};

/** RabbitMQ compares table values by type class (every integer width is one class) and value. */
export function sameFieldValue(a: unknown, b: unknown): boolean {
  const classOf = (v: unknown) => {
    const type = wireType(v);
    return NUMERIC_CLASS[type] ?? type;
  };
  if (classOf(a) !== classOf(b)) return false;
  return JSON.stringify(plain(a)) === JSON.stringify(plain(b));
}

function plain(value: unknown): unknown {
  const v = isTyped(value) ? value.value : value;
  return Buffer.isBuffer(v) ? v.toString('base64') : v;
}

/** A value as RabbitMQ prints it in a refusal: `'1000'`, `'foo'`. */
export function printValue(value: unknown): string {
  const v = plain(value);
  return `'${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}'`;
}
