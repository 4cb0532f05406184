import { CloudEvent } from 'cloudevents';
import { cloudEventHeaders, isStructuredCloudEvent, readCloudEvent, readStructuredCloudEvent } from '../../lib/codec/cloud-events';
import { DecodeError, InvalidArgumentError } from '../../lib';

/** The CloudEvents AMQP binding as pure functions, checked against the official SDK's own validation. */
describe('CloudEvents attributes', () => {
  const now = new Date('2026-12-07T10:00:00.000Z');

  it('writes binary-mode headers the SDK validates', () => {
    const headers = cloudEventHeaders({ source: '/orders', subject: 'o-1' }, 'm-1', 'com.example.created', now, 'application/json');
    expect(headers).toEqual({
      'cloudEvents:specversion': '1.0',
      'cloudEvents:id': 'm-1',
      'cloudEvents:source': '/orders',
      'cloudEvents:type': 'com.example.created',
      'cloudEvents:time': '2026-12-07T10:00:00.000Z',
      'cloudEvents:subject': 'o-1',
      'cloudEvents:datacontenttype': 'application/json',
    });
    const attributes = readCloudEvent(headers)!;
    expect(new CloudEvent({ ...attributes, data: {} } as never, true).validate()).toBe(true);
  });

  it.each([
    [{ source: '' }, 'cloudEvents.source'],
    [{ source: '/x' }, 'cloudEvents.type'],
    [null, 'cloudEvents'],
  ])('refuses %j naming the option', (options, option) => {
    expect(() => cloudEventHeaders(options as never, 'id', undefined, now)).toThrow(InvalidArgumentError);
    expect(() => cloudEventHeaders(options as never, 'id', undefined, now)).toThrow(`"${option}"`);
  });

  it('reads attributes under either prefix, and nothing from a message that is no event', () => {
    expect(readCloudEvent({ cloudEvents_specversion: '1.0', cloudEvents_id: Buffer.from('b') })).toEqual({ specversion: '1.0', id: 'b' });
    expect(readCloudEvent({ 'x-request-id': 'r' })).toBeUndefined();
    expect(readCloudEvent({ 'cloudEvents:id': 'no-specversion' })).toBeUndefined();
  });

  it('reads a structured event: data, or data_base64 as bytes, apart from its attributes', () => {
    const event = new CloudEvent({ source: '/s', type: 't', data: { a: 1 } });
    expect(readStructuredCloudEvent(JSON.parse(event.toString()))).toEqual({
      data: { a: 1 },
      attributes: expect.objectContaining({ id: event.id, source: '/s', type: 't', specversion: '1.0' }),
    });
    expect(readStructuredCloudEvent({ specversion: '1.0', data_base64: 'aGk=' }).data).toEqual(Buffer.from('hi'));
    expect(() => readStructuredCloudEvent({ data: 1 })).toThrow(DecodeError);
    expect(() => readStructuredCloudEvent({ specversion: '1.0', data_base64: 5 })).toThrow(DecodeError);
  });

  it.each([
    ['application/cloudevents+json', true],
    ['application/cloudevents+json; charset=utf-8', true],
    ['Application/CloudEvents+JSON', true],
    ['application/json', false],
    [undefined, false],
  ])('takes %s as structured mode: %s', (contentType, structured) => {
    expect(isStructuredCloudEvent(contentType)).toBe(structured);
  });
});
