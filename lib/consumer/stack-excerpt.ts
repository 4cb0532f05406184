import { MAX_ERROR_MESSAGE_LENGTH } from '../messaging.constants';

const FIRST_FRAME = '\n    at ';

/**
 * Where an error was thrown, for whoever reads its dead letter: the frames of its stack (V8's first
 * line only repeats x-error-name and x-error-message), cut to MAX_ERROR_MESSAGE_LENGTH characters.
 * Undefined when the error carries no stack, so no header is written.
 */
export function stackExcerpt(error: Error): string | undefined {
  const stack: unknown = error.stack;
  if (typeof stack !== 'string') return undefined;
  const at = stack.indexOf(FIRST_FRAME);
  const frames = (at === -1 ? stack : stack.slice(at + 1))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .join('\n');
  return frames.length === 0 ? undefined : frames.slice(0, MAX_ERROR_MESSAGE_LENGTH);
}
