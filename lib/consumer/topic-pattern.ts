/**
 * AMQP topic patterns: words separated by dots, `*` one word, `#` zero or more words. Used to
 * pick among the handlers of a shared queue by routing key, and to refuse at startup two
 * handlers that a message could reach both.
 */

export function matchesTopic(pattern: string, routingKey: string): boolean {
  return overlap(pattern.split('.'), routingKey.split('.'), false);
}

/** Whether some routing key matches both patterns. */
export function topicPatternsOverlap(a: string, b: string): boolean {
  return overlap(a.split('.'), b.split('.'), true);
}

/** `wildB`: the second list is a pattern too (otherwise a routing key, whose `*` and `#` are plain words). */
function overlap(a: string[], b: string[], wildB: boolean): boolean {
  const memo = new Map<number, boolean>();
  const at = (i: number, j: number): boolean => {
    const key = i * (b.length + 1) + j;
    let result = memo.get(key);
    if (result !== undefined) return result;
    if (i === a.length && j === b.length) result = true;
    else if (i < a.length && a[i] === '#') result = at(i + 1, j) || (j < b.length && at(i, j + 1));
    else if (wildB && j < b.length && b[j] === '#') result = at(i, j + 1) || (i < a.length && at(i + 1, j));
    else if (i === a.length || j === b.length) result = false;
    else result = (a[i] === '*' || (wildB && b[j] === '*') || a[i] === b[j]) && at(i + 1, j + 1);
    memo.set(key, result);
    return result;
  };
  return at(0, 0);
}
