import { Observable } from 'rxjs';
import type { JsonSchema } from '../interfaces/asyncapi-options.interface';
import { optionalPeer } from '../telemetry/optional-peer';

/** What the document points to for a described class: its entry in `components.schemas`. */
const REF_PREFIX = '#/components/schemas/';

/** What `class-validator-jsonschema` offers and the document uses. */
export interface SchemaConverter {
  validationMetadatasToSchemas(options: ConverterOptions): Record<string, JsonSchema>;
  targetConstructorToSchema(target: object, options: ConverterOptions): JsonSchema;
}

interface ConverterOptions {
  refPointerPrefix: string;
  classTransformerMetadataStorage?: unknown;
}

/** A payload as the document shows it: its schema, and the name of its class when it is one of the app's. */
export interface DescribedPayload {
  schema: JsonSchema;
  className?: string;
}

/**
 * Types that TypeScript's metadata gives for parameters and return values of no class of the app:
 * an interface or a union is `Object`; an async method's value and an Observable's are unknown.
 * Each is described by the JSON that the built-in codecs make of it.
 */
const BUILT_IN = new Map<unknown, JsonSchema>([
  [Object, {}],
  [String, { type: 'string' }],
  [Number, { type: 'number' }],
  [Boolean, { type: 'boolean' }],
  [Array, { type: 'array' }],
  [Date, { type: 'string', format: 'date-time' }],
  [Buffer, { type: 'string', contentMediaType: 'application/octet-stream', description: 'Bytes (a Buffer)' }],
  [Promise, {}],
  [Observable, {}],
  [Function, {}],
]);

/**
 * The JSON Schemas of payloads, for one document: a class of the app is described once, in
 * `components.schemas` (with the classes it nests), from its class-validator rules by
 * `class-validator-jsonschema`, an optional peer loaded only here. Without it a class is described
 * by a schema that says what to install.
 */
export class PayloadSchemas {
  /** Without a prototype: the keys are class names, which may be `constructor` or `__proto__`. */
  private readonly components: Record<string, JsonSchema> = Object.create(null);
  /** The component name of each class described, and back: two classes of one name get two names. */
  private readonly names = new Map<object, string>();
  private readonly classes = new Map<string, object>();
  /** Every class-validator class of the process, as one converter call makes them (with `$ref`s between them). */
  private converted?: Record<string, JsonSchema>;

  /** `converter`: see loadSchemaConverter; none, and classes are described by what to install. */
  constructor(private readonly converter: SchemaConverter | undefined) {}

  /** A class, a JSON Schema, or nothing (an unknown payload). */
  describe(source: unknown): DescribedPayload {
    if (source === undefined) return { schema: {} };
    if (typeof source !== 'function') return { schema: source as JsonSchema };
    const builtIn = BUILT_IN.get(source);
    if (builtIn) return { schema: { ...builtIn } };
    const className = this.componentOf(source);
    return { schema: { $ref: `${REF_PREFIX}${className}` }, className };
  }

  /** What `components.schemas` holds: every class described so far. */
  schemas(): Record<string, JsonSchema> {
    return this.components;
  }

  private componentOf(type: { name: string }): string {
    const known = this.names.get(type);
    if (known) return known;
    const base = type.name.replace(/[^\w.-]/g, '_') || 'Anonymous';
    let name = base;
    for (let n = 2; this.classes.has(name); n++) name = `${base}_${n}`;
    this.names.set(type, name);
    this.classes.set(name, type);
    this.components[name] = this.schemaOf(type, name === base);
    if (this.converter) this.addNested(this.components[name]);
    return name;
  }

  private schemaOf(type: { name: string }, ownName: boolean): JsonSchema {
    if (!this.converter) {
      return {
        type: 'object',
        description: `${type.name}: install class-validator-jsonschema (with class-validator) to have its properties described from its validation rules`,
      };
    }
    const options = converterOptions();
    this.converted ??= this.converter.validationMetadatasToSchemas(options);
    // The converter keys its schemas by class name: a second class of the same name is converted alone.
    const converted = ownName && Object.hasOwn(this.converted, type.name) ? this.converted[type.name] : undefined;
    const schema = converted ?? this.converter.targetConstructorToSchema(type, options);
    return Object.keys(schema).length > 0 ? schema : { type: 'object', description: `${type.name} has no class-validator rules` };
  }

  /** The classes a schema nests (`$ref`s into the converted ones), described too, so every `$ref` resolves. */
  private addNested(schema: unknown): void {
    for (const ref of refsIn(schema)) {
      const name = ref.slice(REF_PREFIX.length);
      if (Object.hasOwn(this.components, name) || !this.converted || !Object.hasOwn(this.converted, name)) continue;
      this.components[name] = this.converted[name];
      this.addNested(this.converted[name]);
    }
  }
}

function refsIn(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) =>
    key === '$ref' && typeof inner === 'string' && inner.startsWith(REF_PREFIX) ? [inner] : refsIn(inner),
  );
}

function converterOptions(): ConverterOptions {
  // class-transformer's @Type() tells what a nested property holds (an array of a class): read when installed.
  const transformer = optionalPeer<{ defaultMetadataStorage: unknown }>('class-transformer/cjs/storage');
  return { refPointerPrefix: REF_PREFIX, classTransformerMetadataStorage: transformer?.defaultMetadataStorage };
}

/** `class-validator-jsonschema`, when installed (it is an optional peer). */
export function loadSchemaConverter(): SchemaConverter | undefined {
  try {
    return optionalPeer<SchemaConverter>('class-validator-jsonschema');
  } catch {
    // Installed without its own peer, class-validator: it cannot load, and classes are described without it.
    return undefined;
  }
}
