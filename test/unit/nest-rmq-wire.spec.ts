import 'reflect-metadata';
import fc from 'fast-check';
import { transformPatternToRoute } from '@nestjs/microservices/utils/transform-pattern.utils';
import { nestPacket, nestReply, nestRoute, readNestPacket, readNestReply } from '../../lib/codec/nest-rmq-wire';
import { DecodeError, RpcRemoteError } from '../../lib';

/** Nest's RMQ wire format, checked against @nestjs/microservices' own pattern routing. */
describe('Nest RMQ wire format', () => {
  it('routes every pattern as Nest does (keys sorted at every depth, strings quoted and escaped)', () => {
    const leaf = fc.oneof(fc.string(), fc.integer(), fc.boolean());
    const pattern = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(leaf, fc.dictionary(fc.string({ maxLength: 6 }), leaf, { maxKeys: 4 })), {
        maxKeys: 6,
      }),
    );
    fc.assert(fc.property(pattern, (p) => nestRoute(p) === transformPatternToRoute(p as never)));
    expect(nestRoute({ b: 1, a: 'x' })).toBe(nestRoute({ a: 'x', b: 1 }));
  });

  it.each([
    [
      { pattern: 'sum', data: [1, 2], id: '1' },
      { data: [1, 2], route: 'sum' },
    ],
    [
      { pattern: { cmd: 'sum' }, data: { a: 1 } },
      { data: { a: 1 }, route: '{"cmd":"sum"}' },
    ],
    [{ pattern: 'ping' }, { data: undefined, route: 'ping' }],
  ])('reads the packet %j', (body, expected) => {
    expect(readNestPacket(body)).toEqual(expected);
  });

  it.each([[null], ['text'], [{ data: 1 }], [{ pattern: null, data: 1 }]])('refuses %j as a Nest packet', (body) => {
    expect(() => readNestPacket(body)).toThrow(DecodeError);
  });

  it('writes requests, events and replies as Nest reads them', () => {
    expect(nestPacket('sum', [1], 'id-1')).toEqual({ pattern: 'sum', data: [1], id: 'id-1' });
    expect(nestPacket({ cmd: 'created' }, { n: 1 })).toEqual({ pattern: { cmd: 'created' }, data: { n: 1 } });
    expect(nestReply(3)).toEqual({ response: 3, isDisposed: true });
    expect(nestReply(undefined, new TypeError('bad'))).toEqual({
      err: { status: 'error', message: 'bad', name: 'TypeError' },
      isDisposed: true,
    });
  });

  it('reads a Nest server reply: its response, or its err as RpcRemoteError', () => {
    expect(readNestReply({ response: 5, isDisposed: true })).toBe(5);
    expect(readNestReply({ isDisposed: true })).toBeUndefined();
    expect(() => readNestReply({ err: { status: 'error', message: 'nope' }, isDisposed: true })).toThrow(
      new RpcRemoteError('RpcException', 'nope'),
    );
    expect(() => readNestReply({ err: 'There is no matching message handler defined in the remote service.' })).toThrow(/no matching/);
    expect(() => readNestReply('5')).toThrow(RpcRemoteError);
  });
});
