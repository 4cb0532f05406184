import { BadRequestException, ForbiddenException, NotFoundException } from '@nestjs/common';
import {
  BrokerUnreachableError,
  ConnectionLostError,
  EncodeError,
  ExchangeNotFoundError,
  InvalidArgumentError,
  MessageRejectedError,
  PublishTimeoutError,
  QueueNotFoundError,
  RpcAbortedError,
  RpcRemoteError,
  RpcTimeoutError,
  ShuttingDownError,
  UnroutableError,
  httpAnswerOf,
} from '../../lib';
import { errorStatus, isHttpStatus } from '../../lib/util/error-status';

/** Messaging errors as HTTP answers (MessagingHttpExceptionFilter), and the status an error reply carries. */
describe('httpAnswerOf', () => {
  it.each<[string, unknown, ReturnType<typeof httpAnswerOf>]>([
    ['a timeout', new RpcTimeoutError('q', 100), { status: 504, expose: true }],
    ["a remote handler's 404", new RpcRemoteError('NotFoundException', 'no such sku', 404), { status: 404, expose: true }],
    ["a remote handler's 409", new RpcRemoteError('ConflictException', 'taken', 409), { status: 409, expose: true }],
    ["a remote handler's 500", new RpcRemoteError('InternalServerErrorException', 'oops', 500), { status: 502, expose: false }],
    ['a remote failure with no status', new RpcRemoteError('Error', 'db down'), { status: 502, expose: false }],
    ['no queue', new UnroutableError('', 'q'), { status: 503, expose: false }],
    ['no exchange', new ExchangeNotFoundError('x', 'NOT_FOUND'), { status: 503, expose: false }],
    ['no broker', new BrokerUnreachableError('cannot connect'), { status: 503, expose: false }],
    ['a lost connection', new ConnectionLostError('lost'), { status: 503, expose: false }],
    ['shutdown', new ShuttingDownError('closing'), { status: 503, expose: false }],
    ['a slow broker', new PublishTimeoutError('no confirm within 1000 ms'), { status: 503, expose: false }],
    ['an aborted call', new RpcAbortedError(), { status: 503, expose: false }],
    ['a missing queue (passive check)', new QueueNotFoundError('q', 'NOT_FOUND'), { status: 503, expose: false }],
    ['a bad argument', new InvalidArgumentError('timeoutMs', 'a number', 'x'), { status: 500, expose: false }],
    ['a payload that does not encode', new EncodeError('too large'), { status: 500, expose: false }],
    ['no messaging error', new Error('other'), undefined],
    ['an HttpException', new BadRequestException('bad'), undefined],
  ])('%s', (_what, error, answer) => {
    expect(httpAnswerOf(error)).toEqual(answer);
  });
});

describe('errorStatus', () => {
  it.each<[string, unknown, number | undefined]>([
    ['an HttpException', new NotFoundException('x'), 404],
    ['a pipe refusal, through its cause', new MessageRejectedError('BadRequestException', 'bad', new BadRequestException('bad')), 400],
    ['a guard refusal', new ForbiddenException(), 403],
    ['a plain error', new Error('x'), undefined],
    ['a getStatus that lies', { getStatus: () => 42 }, undefined],
    [
      'a cause chain that loops',
      (() => {
        const a: { cause?: unknown } = {};
        a.cause = a;
        return a;
      })(),
      undefined,
    ],
    ['not an object', 'text', undefined],
  ])('%s', (_what, error, status) => {
    expect(errorStatus(error)).toBe(status);
  });

  it.each([
    [100, true],
    [599, true],
    [99, false],
    [600, false],
    [404.5, false],
    ['404', false],
  ])('isHttpStatus(%j) is %s', (value, ok) => {
    expect(isHttpStatus(value)).toBe(ok);
  });
});
