import {
  HEADER_ATTEMPTS,
  HEADER_ERROR_MESSAGE,
  HEADER_ERROR_NAME,
  HEADER_ERROR_STACK,
  HEADER_ORIGINAL_EXCHANGE,
  HEADER_ORIGINAL_QUEUE,
  HEADER_ORIGINAL_ROUTING_KEY,
} from '../messaging.constants';
import type { DeadLetter } from '../operations/dead-letter';
import { own } from '../util/own-headers';
import { type BodyText, bodyText } from './body-text';
import { headerText } from './header-text';

/** Headers shown per letter: a producer may have sent thousands. */
export const MAX_HEADERS_SHOWN = 100;

/** A dead letter as the pages and the JSON API show it: text only, each part cut to its size. */
export interface LetterView {
  id: string;
  position: number;
  messageId?: string;
  errorName?: string;
  errorMessage?: string;
  errorStack?: string;
  attempts?: string;
  originalQueue?: string;
  originalExchange?: string;
  originalRoutingKey?: string;
  contentType?: string;
  contentEncoding?: string;
  /** The headers, the module's included, in the order the message has them: the first MAX_HEADERS_SHOWN. */
  headers: Array<{ name: string; value: string }>;
  /** How many headers are not in `headers`. */
  headersLeftOut: number;
  body: BodyText;
}

export function letterView(letter: DeadLetter): LetterView {
  const { headers, properties } = letter;
  const names = Object.keys(headers);
  const header = (name: string) => optionalText(own(headers, name));
  return {
    id: letter.id,
    position: letter.position,
    messageId: optionalText(letter.messageId),
    errorName: header(HEADER_ERROR_NAME),
    errorMessage: header(HEADER_ERROR_MESSAGE),
    errorStack: header(HEADER_ERROR_STACK),
    attempts: header(HEADER_ATTEMPTS),
    originalQueue: header(HEADER_ORIGINAL_QUEUE),
    originalExchange: header(HEADER_ORIGINAL_EXCHANGE),
    originalRoutingKey: header(HEADER_ORIGINAL_ROUTING_KEY),
    contentType: optionalText(properties.contentType),
    contentEncoding: optionalText(properties.contentEncoding),
    headers: names.slice(0, MAX_HEADERS_SHOWN).map((name) => ({ name: headerText(name), value: headerText(headers[name]) })),
    headersLeftOut: Math.max(0, names.length - MAX_HEADERS_SHOWN),
    body: bodyText(letter.content, properties.contentType, properties.contentEncoding),
  };
}

function optionalText(value: unknown): string | undefined {
  return value === undefined ? undefined : headerText(value);
}
