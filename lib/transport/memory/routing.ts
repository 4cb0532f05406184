import { sameFieldValue } from './field-table';

/**
 * Binding matches of topic and headers exchanges, as RabbitMQ decides them.
 */

/** `*` is exactly one word, `#` zero or more; words are split by `.` (an empty key has none). */
export function topicMatches(pattern: string, routingKey: string): boolean {
  return matchWords(words(pattern), 0, words(routingKey), 0);
}

function words(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

function matchWords(pattern: string[], p: number, key: string[], k: number): boolean {
  if (p === pattern.length) return k === key.length;
  const word = pattern[p];
  if (word === '#') {
    // Consecutive `#` behave as one; then try every split of what is left.
    if (p + 1 < pattern.length && pattern[p + 1] === '#') return matchWords(pattern, p + 1, key, k);
    for (let skip = k; skip <= key.length; skip++) {
      if (matchWords(pattern, p + 1, key, skip)) return true;
    }
    return false;
  }
  if (k === key.length) return false;
  return (word === '*' || word === key[k]) && matchWords(pattern, p + 1, key, k + 1);
}

type XMatch = 'all' | 'any' | 'all-with-x' | 'any-with-x';

/**
 * `x-match` all (the default) or any; the `-with-x` variants also compare the binding's `x-`
 * keys, which otherwise are the binding's own settings. A binding value of null (AMQP void) asks
 * only that the header be present. With nothing to compare, all matches and any does not.
 */
export function headersMatch(bindingArgs: Record<string, unknown>, headers: Record<string, unknown> | undefined): boolean {
  const mode = (bindingArgs['x-match'] as XMatch | undefined) ?? 'all';
  const withX = mode.endsWith('-with-x');
  const wanted = Object.keys(bindingArgs).filter((key) => key !== 'x-match' && (withX || !key.startsWith('x-')));
  const matches = (key: string) => {
    if (headers === undefined || !Object.hasOwn(headers, key) || headers[key] === undefined) return false;
    return bindingArgs[key] === null || sameFieldValue(bindingArgs[key], headers[key]);
  };
  return mode.startsWith('all') ? wanted.every(matches) : wanted.some(matches);
}
