import * as net from 'node:net';
import { AMQP_URL } from './broker';

/**
 * A minimal AMQP 0-9-1 publisher on a raw socket, for what amqplib refuses to encode: a content
 * header whose header table is larger than amqplib's 64 KiB encoding buffer. AMQP itself allows
 * a table up to 2^32 bytes; the real bound is that a content header is one frame, so it must fit
 * in the negotiated frame_max (RabbitMQ's default: 131,072 bytes).
 * It speaks only what it needs: handshake (PLAIN), one channel in confirm mode, basic.publish
 * with string/integer headers, close. Strings are written as longstr ('S'), numbers as 'I'.
 */
export class RawAmqpPublisher {
  private buffer = Buffer.alloc(0);
  private waiters: Array<{ accept: (frame: Frame) => boolean; resolve: (frame: Frame) => void; reject: (error: Error) => void }> = [];
  private failure?: Error;
  /** What the broker said when it closed the connection or channel, if it did. */
  closedBy?: string;
  frameMax = 0;
  private deliveryTag = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error(`socket closed${this.closedBy ? `: ${this.closedBy}` : ''}`)));
  }

  static async open(url = AMQP_URL): Promise<RawAmqpPublisher> {
    const target = new URL(url);
    const socket = net.connect({ host: target.hostname, port: Number(target.port || 5672) });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new RawAmqpPublisher(socket);
    socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
    await client.expect(10, 10); // connection.start
    const user = decodeURIComponent(target.username || 'guest');
    const password = decodeURIComponent(target.password || 'guest');
    client.method(0, 10, 11, [table({}), shortstr('PLAIN'), longstr(`\0${user}\0${password}`), shortstr('en_US')]);
    const tune = await client.expect(10, 30);
    const channelMax = tune.args.readUInt16BE(0);
    client.frameMax = tune.args.readUInt32BE(2);
    client.method(0, 10, 31, [u16(channelMax), u32(client.frameMax), u16(0)]); // no heartbeats
    client.method(0, 10, 40, [shortstr(decodeURIComponent(target.pathname.slice(1)) || '/'), shortstr(''), Buffer.from([0])]);
    await client.expect(10, 41);
    client.method(1, 20, 10, [shortstr('')]);
    await client.expect(20, 11);
    client.method(1, 85, 10, [Buffer.from([0])]); // confirm.select
    await client.expect(85, 11);
    return client;
  }

  /**
   * Publishes on channel 1 and resolves with the broker's verdict: 'ack' / 'nack', or rejects with
   * why the broker closed the channel or connection.
   */
  async publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties: { contentType?: string; messageId?: string; headers?: Record<string, string | number> },
  ): Promise<'ack' | 'nack'> {
    const tag = ++this.deliveryTag;
    this.method(1, 60, 40, [u16(0), shortstr(exchange), shortstr(routingKey), Buffer.from([0])]);
    let flags = 0;
    const fields: Buffer[] = [];
    if (properties.contentType !== undefined) {
      flags |= 1 << 15;
      fields.push(shortstr(properties.contentType));
    }
    if (properties.headers !== undefined) {
      flags |= 1 << 13;
      fields.push(table(properties.headers));
    }
    if (properties.messageId !== undefined) {
      flags |= 1 << 7;
      fields.push(shortstr(properties.messageId));
    }
    const size = Buffer.alloc(8);
    size.writeBigUInt64BE(BigInt(body.length));
    this.frame(2, 1, Buffer.concat([u16(60), u16(0), size, u16(flags), ...fields]));
    for (let at = 0; at < body.length; at += this.frameMax - 8) this.frame(3, 1, body.subarray(at, at + this.frameMax - 8));
    const verdict = await this.expect(60, [80, 120], (frame) => frame.args.readBigUInt64BE(0) >= BigInt(tag));
    return verdict.methodId === 80 ? 'ack' : 'nack';
  }

  /** The size of the content header frame payload `publish` would write for these headers. */
  static headerFrameSize(headers: Record<string, string | number>, contentType: string, messageId: string): number {
    return 14 + shortstr(contentType).length + table(headers).length + shortstr(messageId).length;
  }

  async close(): Promise<void> {
    if (!this.failure) {
      this.method(0, 10, 50, [u16(200), shortstr('bye'), u16(0), u16(0)]);
      await this.expect(10, 51).catch(() => undefined);
    }
    this.socket.destroy();
  }

  private method(channel: number, classId: number, methodId: number, args: Buffer[]): void {
    this.frame(1, channel, Buffer.concat([u16(classId), u16(methodId), ...args]));
  }

  private frame(type: number, channel: number, payload: Buffer): void {
    const header = Buffer.alloc(7);
    header.writeUInt8(type, 0);
    header.writeUInt16BE(channel, 1);
    header.writeUInt32BE(payload.length, 3);
    this.socket.write(Buffer.concat([header, payload, Buffer.from([0xce])]));
  }

  private expect(classId: number, methodIds: number | number[], accept: (frame: Frame) => boolean = () => true): Promise<Frame> {
    const ids = Array.isArray(methodIds) ? methodIds : [methodIds];
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) =>
      this.waiters.push({ accept: (f) => f.classId === classId && ids.includes(f.methodId) && accept(f), resolve, reject }),
    );
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 8) {
      const size = this.buffer.readUInt32BE(3);
      if (this.buffer.length < size + 8) return;
      const type = this.buffer.readUInt8(0);
      const payload = this.buffer.subarray(7, 7 + size);
      this.buffer = this.buffer.subarray(size + 8);
      if (type !== 1) continue; // heartbeats and content: not used here
      const frame: Frame = { classId: payload.readUInt16BE(0), methodId: payload.readUInt16BE(2), args: payload.subarray(4) };
      if ((frame.classId === 10 && frame.methodId === 50) || (frame.classId === 20 && frame.methodId === 40)) {
        // connection.close / channel.close from the broker: reply-code, reply-text.
        this.closedBy = `${frame.args.readUInt16BE(0)} ${frame.args.toString('latin1', 3, 3 + frame.args.readUInt8(2))}`;
        if (frame.classId === 10) this.method(0, 10, 51, []);
        this.fail(new Error(`closed by the broker: ${this.closedBy}`));
        continue;
      }
      const index = this.waiters.findIndex((w) => w.accept(frame));
      if (index >= 0) this.waiters.splice(index, 1)[0].resolve(frame);
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure);
  }
}

interface Frame {
  classId: number;
  methodId: number;
  args: Buffer;
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}

function shortstr(text: string): Buffer {
  const bytes = Buffer.from(text);
  if (bytes.length > 255) throw new RangeError(`short string over 255 bytes: ${text.slice(0, 40)}...`);
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

function longstr(text: string): Buffer {
  const bytes = Buffer.from(text);
  return Buffer.concat([u32(bytes.length), bytes]);
}

function table(entries: Record<string, string | number>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(entries)) {
    parts.push(shortstr(key));
    if (typeof value === 'number') parts.push(Buffer.from('I'), u32(value >>> 0));
    else parts.push(Buffer.from('S'), longstr(value));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length), body]);
}
