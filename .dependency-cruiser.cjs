/**
 * The layering of lib/, bottom to top, checked by `npm run lint:deps` (dependency-cruiser).
 * A module may import its own layer and the layers below it, never one above; with every folder
 * in one layer, no cycle can run between folders. The picture is in docs/architecture.md ("Layout").
 */
const LAYERS = [
  // the shared kernel: errors, tokens and header names, public types, small helpers
  ['^lib/messaging\\.(errors|constants)\\.ts$', '^lib/interfaces/', '^lib/util/'],
  // leaves: payload codecs, the broker seam and its two brokers, SQL helpers
  ['^lib/codec/', '^lib/transport/', '^lib/postgres/'],
  // the options, validated into values
  ['^lib/messaging\\.options\\.ts$'],
  // per-message context, telemetry, idempotency stores
  ['^lib/context/', '^lib/telemetry/', '^lib/idempotency/'],
  ['^lib/connection/'],
  ['^lib/publisher/'],
  ['^lib/topology/'],
  ['^lib/rpc/'],
  // the delivery runtime
  ['^lib/consumer/'],
  // Nest glue: discovery, enhancers, params, lifecycle, and what builds the consumers
  ['^lib/nest/', '^lib/decorators/'],
  // operator services, and the AsyncAPI document made from what nest/ and topology/ know
  ['^lib/operations/', '^lib/asyncapi/'],
  // plug-ins at the edge: each is a subpath entry of its own
  ['^lib/outbox/', '^lib/testing/', '^lib/terminus/', '^lib/http/', '^lib/console/'],
  // the module's wiring and the root entry
  ['^lib/messaging\\.module\\.ts$', '^lib/index\\.ts$'],
];

const upward = LAYERS.slice(0, -1).flatMap((layer, i) =>
  layer.map((from) => ({
    name: 'no-upward-import',
    comment: `${from} is in layer ${i}: it may not import a layer above it`,
    severity: 'error',
    from: { path: from },
    to: { path: LAYERS.slice(i + 1).flat() },
  })),
);

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-cycle',
      comment: 'no runtime import cycle; the layers keep type-only ones inside a folder',
      severity: 'error',
      from: { path: '^lib/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'amqplib-only-in-transport-amqp',
      comment: 'the broker seam: amqplib is reached through transport/amqp/ alone',
      severity: 'error',
      from: { path: '^lib/', pathNot: ['^lib/transport/amqp/'] },
      to: { path: '^node_modules/(amqplib|@types/amqplib)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'amqplib-types-only-where-the-contract-names-them',
      comment: "API.md types MessageContext.raw as amqplib's ConsumeMessage: that one type import is allowed",
      severity: 'error',
      from: { path: '^lib/', pathNot: ['^lib/transport/amqp/', '^lib/interfaces/message-context\\.interface\\.ts$'] },
      to: { path: '^node_modules/(amqplib|@types/amqplib)/', dependencyTypes: ['type-only'] },
    },
    {
      name: 'core-never-imports-plugins',
      comment:
        'the outbox, the Redis and PostgreSQL stores, the harness, terminus and the console are reached only through their subpath entries (and the wiring in messaging.module.ts)',
      severity: 'error',
      from: {
        path: '^lib/',
        pathNot: [
          '^lib/(outbox|testing|terminus|console)/',
          '^lib/messaging\\.module\\.ts$',
          '^lib/index\\.ts$',
          '^lib/idempotency/index\\.ts$',
        ],
      },
      to: { path: ['^lib/(outbox|testing|terminus|console)/', '^lib/idempotency/(redis|postgres)-idempotency\\.store\\.ts$'] },
    },
    {
      name: 'no-orphans',
      severity: 'error',
      from: {
        orphan: true,
        path: '^lib/',
        pathNot: ['\\.d\\.ts$', '^lib/(index|terminus/index|outbox/index|idempotency/index|testing/index|console/index)\\.ts$'],
      },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
