/**
 * Characters that change how the text around them is shown without being seen: C0 and C1 controls
 * (but tab and line breaks), bidirectional overrides and isolates, zero-width characters.
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
const INVISIBLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

/**
 * Text from a message as an operator should see it: each invisible character written out as
 * `\u{…}`, so a header or body cannot hide text or reverse what follows it (a bidi override).
 */
export function visibleText(text: string): string {
  return text.replace(INVISIBLE, (char) => `\\u{${char.codePointAt(0)!.toString(16)}}`);
}

/** At most `max` characters, never splitting a surrogate pair; `cut` tells whether anything went. */
export function cutText(text: string, max: number): { text: string; cut: boolean } {
  if (text.length <= max) return { text, cut: false };
  const end = /[\ud800-\udbff]/.test(text[max - 1]) ? max - 1 : max;
  return { text: text.slice(0, end), cut: true };
}
