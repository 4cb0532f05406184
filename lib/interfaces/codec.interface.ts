/**
 * Turns payloads of one content type into bytes and back. Registered with
 * `MessagingModule.forRoot({ codecs: [...] })`; picked for a send by `SendOptions.contentType`,
 * and for a delivery by its content-type property.
 */
export interface Codec {
  /** The media type it handles (`type/subtype`, matched without case or parameters); written as the message's content-type. */
  contentType: string;
  encode(value: unknown): Buffer;
  /** A body that cannot be decoded should throw: the message is dead-lettered (DecodeError) at once. */
  decode(body: Buffer): unknown;
}

/** How the registry calls a codec: built-in ones read parameters of the full content type (text's charset). */
export interface RegisteredCodec extends Codec {
  decode(body: Buffer, contentType?: string): unknown;
}
