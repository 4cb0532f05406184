import { Type } from 'class-transformer';
import { IsEmail, IsInt, IsOptional, IsString, Length, Max, Min, ValidateNested } from 'class-validator';
import { Observable } from 'rxjs';
import { MessageCtx, MessageHandler, Payload, type MessageContext } from '../../lib';
import { handlerTypes } from '../../lib/asyncapi/handler-types';
import { loadSchemaConverter, PayloadSchemas } from '../../lib/asyncapi/payload-schemas';

class Line {
  @IsString()
  sku!: string;

  @IsInt()
  @Min(1)
  @Max(99)
  quantity!: number;
}

class Order {
  @IsString()
  @Length(1, 80)
  orderId!: string;

  @IsOptional()
  @IsEmail()
  email?: string;

  @ValidateNested({ each: true })
  @Type(() => Line)
  lines!: Line[];
}

/** No class-validator rule on it. */
class Plain {
  note!: string;
}

describe('AsyncAPI payload schemas', () => {
  it('describes a class from its class-validator rules, with the classes it nests, in components', () => {
    const schemas = new PayloadSchemas(loadSchemaConverter());
    expect(schemas.describe(Order)).toEqual({ schema: { $ref: '#/components/schemas/Order' }, className: 'Order' });
    const { Order: order, Line: line } = schemas.schemas();
    expect(order).toEqual({
      type: 'object',
      properties: {
        orderId: { type: 'string', minLength: 1, maxLength: 80 },
        email: { type: 'string', format: 'email' },
        lines: { type: 'array', items: { $ref: '#/components/schemas/Line' } },
      },
      required: ['orderId', 'lines'],
    });
    expect(line).toMatchObject({ properties: { quantity: { type: 'integer', minimum: 1, maximum: 99 } }, required: ['sku', 'quantity'] });
    expect(Object.keys(schemas.schemas())).toEqual(['Order', 'Line']);
  });

  it.each<[string, unknown, Record<string, unknown>]>([
    ['nothing (an unknown payload)', undefined, {}],
    ['Object (an interface, a union)', Object, {}],
    ['String', String, { type: 'string' }],
    ['Number', Number, { type: 'number' }],
    ['Boolean', Boolean, { type: 'boolean' }],
    ['Array', Array, { type: 'array' }],
    ['Date (as JSON writes it)', Date, { type: 'string', format: 'date-time' }],
    ['a JSON Schema, as it is', { type: 'object', required: ['id'] }, { type: 'object', required: ['id'] }],
  ])('describes %s without a component', (_, source, schema) => {
    const schemas = new PayloadSchemas(loadSchemaConverter());
    expect(schemas.describe(source)).toEqual({ schema });
    expect(schemas.schemas()).toEqual({});
  });

  it('says what a class without rules lacks, and what to install when class-validator-jsonschema is missing', () => {
    const schemas = new PayloadSchemas(loadSchemaConverter());
    schemas.describe(Plain);
    expect(schemas.schemas().Plain).toEqual({ type: 'object', description: 'Plain has no class-validator rules' });

    const without = new PayloadSchemas(undefined);
    expect(without.describe(Order).schema).toEqual({ $ref: '#/components/schemas/Order' });
    expect(without.schemas().Order).toEqual({ type: 'object', description: expect.stringContaining('install class-validator-jsonschema') });
  });

  it('gives two classes of one name two components', () => {
    const other = (() => {
      class Order {
        @IsInt()
        total!: number;
      }
      return Order;
    })();
    const schemas = new PayloadSchemas(loadSchemaConverter());
    expect(schemas.describe(Order).schema).toEqual({ $ref: '#/components/schemas/Order' });
    expect(schemas.describe(other).schema).toEqual({ $ref: '#/components/schemas/Order_2' });
    expect(schemas.describe(Order).schema).toEqual({ $ref: '#/components/schemas/Order' });
    expect(schemas.schemas().Order_2).toMatchObject({ properties: { total: { type: 'integer' } } });
  });
});

/** Handlers whose parameters and return types the metadata tells (SWC emits it as tsc does). */
class Handlers {
  @MessageHandler('a')
  conventional(_order: Order, _context: MessageContext): void {}

  @MessageHandler('b')
  decorated(@MessageCtx() _context: MessageContext, @Payload() order: Order): Line {
    return order.lines[0];
  }

  @MessageHandler('c')
  property(@Payload('orderId') _id: string): string {
    return '';
  }

  @MessageHandler('d')
  async later(_order: Order): Promise<Line> {
    return new Line();
  }

  @MessageHandler('e')
  stream(_order: Order): Observable<number> {
    return new Observable();
  }

  @MessageHandler({ queue: 'f', batch: { size: 2, timeoutMs: 10 } })
  batch(_orders: Order[]): void {}

  @MessageHandler('g')
  untyped(_order: { id: string }): { ok: boolean } {
    return { ok: true };
  }
}

describe('AsyncAPI handler types', () => {
  const schema = { type: 'object', properties: { id: { type: 'string' } } };

  it.each<[string, keyof Handlers, Record<string, unknown>, unknown, { payload: unknown } | undefined]>([
    ['the first parameter by convention; void answers nothing', 'conventional', {}, Order, undefined],
    ['the @Payload() parameter; a class answer', 'decorated', {}, Order, { payload: Line }],
    ['no whole payload for @Payload(property)', 'property', {}, undefined, { payload: String }],
    ['an async method answers nothing by default', 'later', {}, Order, undefined],
    ['an Observable answers nothing by default', 'stream', {}, Order, undefined],
    ['reply: true on an async method: an unknown answer', 'later', { reply: true }, Order, { payload: undefined }],
    ['reply: a class', 'later', { reply: Line }, Order, { payload: Line }],
    ['reply: false', 'decorated', { reply: false }, Order, undefined],
    ['reply: true keeps a declared class', 'decorated', { reply: true }, Order, { payload: Line }],
    ['schema wins over the class', 'conventional', { schema }, schema, undefined],
    ['a batch handler: the type of one message is unknown', 'batch', { batch: { size: 2, timeoutMs: 10 } }, undefined, undefined],
    ['a type literal is Object', 'untyped', {}, Object, { payload: Object }],
  ])('%s', (_, method, options, payload, reply) => {
    expect(handlerTypes(Handlers, method, options)).toEqual(reply === undefined ? { payload } : { payload, reply });
  });
});
