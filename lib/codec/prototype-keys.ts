/**
 * Removes, at any depth, the keys of a parsed JSON value that could reach an object's prototype
 * when user code merges the payload: `__proto__`, and `constructor` holding a `prototype`. JSON.parse
 * makes them own data keys whether written literally or with escapes (`"\u005f_proto__"`), so
 * the walk is skipped only when `text` names neither and has no `\u` escape to spell them with;
 * the scan costs far less than the walk. Returns the value, cleaned in place.
 */
export function stripPrototypeKeys(value: unknown, text: string): unknown {
  if (!text.includes('__proto__') && !text.includes('constructor') && !text.includes('\\u')) return value;
  const stack = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null) continue;
    const record = node as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(record, '__proto__')) delete record['__proto__'];
    if (Object.prototype.hasOwnProperty.call(record, 'constructor') && reachesPrototype(record['constructor']))
      delete record['constructor'];
    for (const key of Object.keys(record)) stack.push(record[key]);
  }
  return value;
}

function reachesPrototype(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'prototype' in value;
}
