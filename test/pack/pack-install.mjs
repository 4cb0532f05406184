#!/usr/bin/env node
// Pack-and-install test: proves the published package works where users get it, from the registry
// and a tarball, not from this repository's sources.
//
//   1. `npm pack` (prepack builds) and check the tarball holds only what should be published.
//   2. Two throwaway apps under os.tmpdir(), each installing the tarball with plain `npm install`
//      (a peer-dependency conflict, ERESOLVE, fails the test):
//        nest12-esm  "type": "module", NestJS 12, nestjs-cls 7, installed with Node 24 and run on
//                    Node 24 (the active LTS) and Node 26 (current)
//        nest11-cjs  CommonJS, NestJS 11, nestjs-cls 6.3, run on this Node (20, the oldest supported)
//      Each compiles a TypeScript file with tsc (strict, skipLibCheck: false), so the package's
//      typings are checked as a consumer sees them, then runs it against RabbitMQ: a command, an
//      event and a request through the injected RpcClient must all arrive within 20 s.
//      Both import the subpath entries nestjs-messaging/testing, /outbox, /idempotency and /console (and the
//      ESM app /terminus): injectable, and the same classes as the root's deprecated re-exports.
//      The CommonJS app also runs the testing example (test/unit/testing-example.spec.ts) under
//      Jest with --detectOpenHandles: it must pass, report no open handle and exit by itself.
//   3. Delete every queue and exchange the apps declared (all named t-pack-<random>...).
//
// Plain Node, no dependencies. AMQP_URL overrides the broker (default amqp://guest:guest@127.0.0.1:5672).
// Node 24 is the one of the Nest 12 test leg (legs/nest12/node_modules/.bin/node) when that is
// installed; otherwise, like Node 26, the `node@<major>` npm package, installed once into
// node_modules/.cache/ (outside test/, which the test leg copies).
// Prints progress, then `pack: N passed, N failed`; exits 1 on any failure.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE_CACHE = path.join(ROOT, 'node_modules/.cache/nestjs-messaging-pack');
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const PREFIX = `t-pack-${randomBytes(4).toString('hex')}`;
const MINUTE = 60_000;
const started = Date.now();

const results = [];
const record = (name, ok, detail = '') => {
  results.push({ name, ok });
  log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
};
const log = (line) => console.log(`[pack ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}`);

/**
 * Runs a command with a hard time limit (its whole process group is killed), collecting its output.
 * Resolves { code, output (stdout and stderr), stdout, timedOut }; never rejects.
 */
function run(command, args, { cwd, timeoutMs, env = {} }) {
  return new Promise((resolve) => {
    let output = '';
    let stdout = '';
    let timedOut = false;
    const child = spawn(command, args, {
      cwd,
      env: { ...cleanEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so a timeout also ends what it started (npm's children)
    });
    child.stdout.on('data', (chunk) => {
      output += chunk;
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: -1, output: `${output}\n${error.message}`, stdout, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), output, stdout, timedOut });
    });
  });
}

/** This process's environment without npm's own run-script variables (e.g. a legacy-peer-deps setting). */
function cleanEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/^npm_/i.test(key)) delete env[key];
  return env;
}

const indent = (text) =>
  text
    .trimEnd()
    .split('\n')
    .map((line) => `    | ${line}`)
    .join('\n');
const describe = (result, timeoutMs) => (result.timedOut ? `timed out after ${timeoutMs / 1000} s` : `exit code ${result.code}`);

// ---------------------------------------------------------------------------------------------
// 1. The tarball

async function pack(dir) {
  log('npm pack (prepack runs the build)');
  const timeoutMs = 5 * MINUTE;
  const result = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, timeoutMs });
  if (result.code !== 0) {
    record('tarball', false, `npm pack failed (${describe(result, timeoutMs)})\n${indent(result.output)}`);
    return undefined;
  }
  // The build's own output comes before npm's JSON.
  const json = JSON.parse(result.stdout.slice(result.stdout.search(/^\[$/m)));
  const { filename, files } = json[0];
  const paths = files.map((file) => file.path).sort();
  const problems = [];
  for (const required of [
    'package.json',
    'LICENSE',
    'README.md',
    'CHANGELOG.md',
    'dist/lib/index.js',
    'dist/lib/index.d.ts',
    'dist/lib/index.mjs',
    'dist/lib/index.d.mts',
    ...['terminus', 'testing', 'outbox', 'idempotency', 'console'].flatMap((entry) => [
      `dist/lib/${entry}/index.js`,
      `dist/lib/${entry}/index.d.ts`,
      `dist/lib/${entry}/index.mjs`,
      `dist/lib/${entry}/index.d.mts`,
    ]),
  ]) {
    if (!paths.includes(required)) problems.push(`missing ${required}`);
  }
  for (const file of paths) {
    const allowed =
      ['package.json', 'LICENSE', 'README.md', 'CHANGELOG.md'].includes(file) || /^dist\/lib\/.+\.(js|mjs|d\.ts|d\.mts)$/.test(file);
    if (!allowed || /\.spec\./.test(file)) problems.push(`unexpected ${file}`);
  }
  const tarball = path.join(dir, filename);
  if (!existsSync(tarball)) problems.push(`no ${filename} in ${dir}`);
  record('tarball', problems.length === 0, problems.length ? problems.join(', ') : `${filename}, ${paths.length} files`);
  return problems.length === 0 ? tarball : undefined;
}

// ---------------------------------------------------------------------------------------------
// Node 24 and 26

/** A Node binary of that major version: the test leg's, or the npm package's (installed once). */
async function nodeOf(major) {
  const cache = path.join(NODE_CACHE, `node${major}`);
  const cached = path.join(cache, 'node_modules/.bin/node');
  for (const candidate of [path.join(ROOT, 'legs/nest12/node_modules/.bin/node'), cached]) {
    if (existsSync(candidate) && (await version(candidate))?.startsWith(`v${major}.`)) return candidate;
  }
  log(`installing node@${major} from the npm registry into ${path.relative(ROOT, cache)}`);
  mkdirSync(cache, { recursive: true });
  writeFileSync(path.join(cache, 'package.json'), '{ "private": true }\n');
  const timeoutMs = 5 * MINUTE;
  const result = await run('npm', ['install', '--no-audit', '--no-fund', '--no-save', `node@${major}`], { cwd: cache, timeoutMs });
  const found = result.code === 0 && (await version(cached))?.startsWith(`v${major}.`);
  if (!found) {
    log(`could not install node@${major} (${describe(result, timeoutMs)})\n${indent(result.output)}`);
    return undefined;
  }
  return cached;
}

async function version(binary) {
  const result = await run(binary, ['--version'], { cwd: ROOT, timeoutMs: 30_000 });
  return result.code === 0 ? result.output.trim() : undefined;
}

// ---------------------------------------------------------------------------------------------
// 2. The apps

const APPS = {
  'nest12-esm': {
    esm: true,
    // Installed and compiled with the first, run on each.
    nodes: [24, 26],
    dependencies: { '@nestjs/common': '^12', '@nestjs/core': '^12', 'nestjs-cls': '^7', '@nestjs/terminus': '^12' },
    compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' },
    // Imports the subpath entry `nestjs-messaging/terminus` and runs its health check.
    terminus: true,
  },
  'nest11-cjs': {
    esm: false,
    nodes: ['this'],
    dependencies: { '@nestjs/common': '^11', '@nestjs/core': '^11', 'nestjs-cls': '~6.3' },
    compilerOptions: { module: 'commonjs', moduleResolution: 'node10' },
    // The same file checked again through the package's "exports" (the `require` condition).
    extraTypecheck: { module: 'node16', moduleResolution: 'node16' },
    // The harness example (test/unit/testing-example.spec.ts) run by Jest with --detectOpenHandles.
    jest: true,
  },
};

/** The testing example as a user's Jest test would hold it: the same file, importing the package. */
function jestExample() {
  const example = readFileSync(path.join(ROOT, 'test/unit/testing-example.spec.ts'), 'utf8');
  if (!example.includes("from '../../lib';")) throw new Error('test/unit/testing-example.spec.ts no longer imports ../../lib');
  return example.replace("from '../../lib';", "from 'nestjs-messaging';");
}

/**
 * The app: one provider with three handlers, one that sends through the injected RpcClient; with
 * `terminus`, also the health indicator of the `nestjs-messaging/terminus` entry, checked once.
 */
function appSource(esm, terminus) {
  return `${esm ? "import { createRequire } from 'node:module';\n" : ''}import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import * as root from 'nestjs-messaging';
import { MessageHandler, MessagingModule, RpcClient, type MessageContext } from 'nestjs-messaging';
import { MessagingHarness } from 'nestjs-messaging/testing';
import { Outbox } from 'nestjs-messaging/outbox';
import { MemoryIdempotencyStore, PostgresIdempotencyStore, RedisIdempotencyStore } from 'nestjs-messaging/idempotency';
import { MessagingConsoleModule } from 'nestjs-messaging/console';
${terminus ? "import { HealthCheckService, TerminusModule } from '@nestjs/terminus';\nimport { MessagingHealthIndicator } from 'nestjs-messaging/terminus';\n" : ''}
const prefix = process.env.PACK_PREFIX!;
const COMMAND_QUEUE = \`\${prefix}.command\`;
const EVENT_EXCHANGE = \`\${prefix}.events\`;
const EVENT_QUEUE = \`\${prefix}.event\`;
const EVENT_KEY = 'pack.happened';
const REQUEST_QUEUE = \`\${prefix}.request\`;
const DEADLINE_MS = 20_000;
const nonce = Math.random().toString(36).slice(2);

interface Arrival {
  payload: { nonce: string };
  queue: string;
  exchange: string;
  routingKey: string;
  messageId?: string;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
const command = deferred<Arrival>();
const event = deferred<Arrival>();

const arrival = (payload: { nonce: string }, context: MessageContext): Arrival => ({
  payload,
  queue: context.queue,
  exchange: context.exchange,
  routingKey: context.routingKey,
  messageId: context.messageId,
});

@Injectable()
class PackHandlers {
  @MessageHandler(COMMAND_QUEUE)
  onCommand(payload: { nonce: string }, context: MessageContext): void {
    command.resolve(arrival(payload, context));
  }

  @MessageHandler({ queue: EVENT_QUEUE, exchange: EVENT_EXCHANGE, routingKey: EVENT_KEY })
  onEvent(payload: { nonce: string }, context: MessageContext): void {
    event.resolve(arrival(payload, context));
  }

  @MessageHandler(REQUEST_QUEUE)
  onRequest(query: { a: number; b: number; nonce: string }): { sum: number; nonce: string } {
    return { sum: query.a + query.b, nonce: query.nonce };
  }
}

@Injectable()
class PackSender {
  constructor(readonly rpc: RpcClient) {}
}

@Module({
  imports: [MessagingModule.forRoot({ uri: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672', serviceName: 'pack-test', idempotency: { store: new MemoryIdempotencyStore() } })${terminus ? ', TerminusModule' : ''}],
  providers: [PackHandlers, PackSender${terminus ? ', MessagingHealthIndicator' : ''}],
})
class AppModule {}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(\`\${what}: nothing within \${ms} ms\`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main(): Promise<void> {
  const result: Record<string, unknown> = {
    node: process.version,
    nest: ${esm ? "createRequire(import.meta.url)('@nestjs/core/package.json').version" : "require('@nestjs/core/package.json').version"},
    entry: ${esm ? "import.meta.resolve('nestjs-messaging')" : "require.resolve('nestjs-messaging')"},
  };
  let ok = false;
  const deadline = Date.now() + DEADLINE_MS;
  const left = () => Math.max(0, deadline - Date.now());
  const app = await within(NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'], abortOnError: false }), left(), 'startup');
  try {
    const { rpc } = app.get(PackSender);
${
  esm
    ? `    // The ESM entry re-exports the CommonJS build: one RpcClient class for import and require.
    result.oneInstance = createRequire(import.meta.url)('nestjs-messaging').RpcClient === RpcClient;
`
    : `    result.oneInstance = true;
`
}    const commandId = await within(rpc.send(COMMAND_QUEUE, { nonce }), left(), 'send');
    const eventId = await within(rpc.publish(EVENT_EXCHANGE, EVENT_KEY, { nonce }), left(), 'publish');
    const answer = await within(rpc.request<{ sum: number; nonce: string }>(REQUEST_QUEUE, { a: 2, b: 3, nonce }, { timeoutMs: left() }), left(), 'request');
    const [gotCommand, gotEvent] = await within(Promise.all([command.promise, event.promise]), left(), 'command and event handlers');
    result.command = gotCommand.payload.nonce === nonce && gotCommand.queue === COMMAND_QUEUE && gotCommand.messageId === commandId;
    result.event =
      gotEvent.payload.nonce === nonce && gotEvent.queue === EVENT_QUEUE && gotEvent.exchange === EVENT_EXCHANGE &&
      gotEvent.routingKey === EVENT_KEY && gotEvent.messageId === eventId;
    result.request = answer.sum === 5 && answer.nonce === nonce;
    // The plug-in entries: injectable from their own subpath, the very classes the root still re-exports (deprecated).
    result.entries =
      app.get(MessagingHarness) instanceof MessagingHarness && app.get(Outbox) instanceof Outbox &&
      root.MessagingHarness === MessagingHarness && root.Outbox === Outbox && root.MemoryIdempotencyStore === MemoryIdempotencyStore &&
      typeof RedisIdempotencyStore === 'function' && typeof PostgresIdempotencyStore === 'function' &&
      typeof MessagingConsoleModule.forRoot === 'function';
    result.health = ${
      terminus ? "(await app.get(HealthCheckService).check([() => app.get(MessagingHealthIndicator).isHealthy()])).status === 'ok'" : 'true'
    };
    ok =
      result.oneInstance === true && result.command === true && result.event === true && result.request === true &&
      result.entries === true && result.health === true;
  } catch (error) {
    result.error = String(error);
  } finally {
    await within(app.close(), 10_000, 'app.close()').catch((error: unknown) => (result.closeError = String(error)));
  }
  result.ms = DEADLINE_MS - left();
  result.ok = ok && result.closeError === undefined;
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

main().catch((error: unknown) => {
  console.log(JSON.stringify({ ok: false, error: String(error) }));
  process.exit(1);
});
`;
}

function writeApp(dir, name, spec, tarball) {
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  const pkg = {
    name: `pack-${name}`,
    private: true,
    version: '0.0.0',
    ...(spec.esm ? { type: 'module' } : {}),
    dependencies: {
      'nestjs-messaging': `file:${tarball}`,
      ...spec.dependencies,
      'reflect-metadata': '^0.2.2',
      rxjs: '^7.8.2',
    },
    devDependencies: {
      typescript: '~5.9.3',
      '@types/node': spec.esm ? '^22' : '^20',
      ...(spec.jest ? { jest: '^30', '@types/jest': '^30', '@nestjs/testing': spec.dependencies['@nestjs/core'] } : {}),
    },
  };
  const compilerOptions = {
    target: 'ES2022',
    lib: ['ES2022'],
    types: spec.jest ? ['node', 'jest'] : ['node'],
    strict: true,
    skipLibCheck: false,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    useDefineForClassFields: false,
    outDir: 'dist',
    rootDir: 'src',
    ...spec.compilerOptions,
  };
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  writeFileSync(path.join(dir, 'tsconfig.json'), `${JSON.stringify({ compilerOptions, include: ['src'] }, null, 2)}\n`);
  if (spec.extraTypecheck) {
    const extra = { extends: './tsconfig.json', compilerOptions: { ...spec.extraTypecheck, noEmit: true } };
    writeFileSync(path.join(dir, 'tsconfig.extra.json'), `${JSON.stringify(extra, null, 2)}\n`);
  }
  writeFileSync(path.join(dir, 'src/main.ts'), appSource(spec.esm, spec.terminus === true));
  if (spec.jest) writeFileSync(path.join(dir, 'src/orders.spec.ts'), jestExample());
}

/** npm for the app's Node: this npm's CLI script, run by that Node binary. */
function npmArgs(node, args) {
  const cli = path.join(path.dirname(process.execPath), '../lib/node_modules/npm/bin/npm-cli.js');
  return existsSync(cli) ? [node, [cli, ...args]] : ['npm', args];
}

/** Installs the app; resolves true when it is ready to compile. */
async function install(name, dir, node) {
  log(`${name}: npm install (${node === process.execPath ? `node ${process.version}` : `node ${await version(node)}`})`);
  const timeoutMs = 6 * MINUTE;
  // Plain install: no --legacy-peer-deps, no --force, whatever the user's npm config says.
  const [command, args] = npmArgs(node, ['install', '--no-audit', '--no-fund', '--legacy-peer-deps=false', '--force=false']);
  const result = await run(command, args, {
    cwd: dir,
    timeoutMs,
    env: { PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}` },
  });
  if (result.code !== 0) {
    record(`${name} install`, false, `npm install failed (${describe(result, timeoutMs)})\n${indent(result.output)}`);
    return false;
  }
  // Peer dependencies npm could only satisfy by overriding show up here as "invalid".
  const [lsCommand, lsArgs] = npmArgs(node, ['ls', '--all']);
  const ls = await run(lsCommand, lsArgs, { cwd: dir, timeoutMs: MINUTE });
  if (ls.code !== 0) {
    record(
      `${name} install`,
      false,
      `npm ls reports problems\n${indent(
        ls.output
          .split('\n')
          .filter((l) => /invalid|missing|ERR/i.test(l))
          .join('\n') || ls.output,
      )}`,
    );
    return false;
  }
  const installed = (pkg) => JSON.parse(readFileSync(path.join(dir, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  record(
    `${name} install`,
    true,
    ['@nestjs/core', 'nestjs-cls', 'amqplib', 'typescript'].map((pkg) => `${pkg}@${installed(pkg)}`).join(', '),
  );
  return true;
}

async function typecheck(name, dir, node, spec) {
  const timeoutMs = 3 * MINUTE;
  const tsc = path.join(dir, 'node_modules/typescript/bin/tsc');
  const projects = ['tsconfig.json', ...(spec.extraTypecheck ? ['tsconfig.extra.json'] : [])];
  log(`${name}: ${projects.map((project) => `tsc -p ${project}`).join(', ')}`);
  const results = await Promise.all(projects.map((project) => run(node, [tsc, '-p', project], { cwd: dir, timeoutMs })));
  const failed = projects.map((project, i) => [project, results[i]]).filter(([, result]) => result.code !== 0);
  for (const [project, result] of failed) {
    record(`${name} typecheck`, false, `tsc -p ${project} failed (${describe(result, timeoutMs)})\n${indent(result.output)}`);
  }
  if (failed.length === 0) record(`${name} typecheck`, true, projects.join(' + '));
  return failed.length === 0;
}

async function start(name, dir, node) {
  log(`${name}: node dist/main.js`);
  const timeoutMs = MINUTE; // the app gives itself 20 s, and 10 s more to close
  const result = await run(node, ['dist/main.js'], {
    cwd: dir,
    timeoutMs,
    env: { AMQP_URL, PACK_PREFIX: `${PREFIX}-${name.replace(/\W+/g, '-')}`, NO_COLOR: '1' },
  });
  const last = result.output
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .pop();
  let parsed;
  try {
    parsed = last && JSON.parse(last);
  } catch {
    parsed = undefined;
  }
  const ok = result.code === 0 && parsed?.ok === true;
  record(`${name} run`, ok, ok ? last : `${describe(result, timeoutMs)}\n${indent(result.output)}`);
}

/**
 * Jest runs the compiled example with --detectOpenHandles: it must pass, report no open handle and
 * exit by itself (a handle that keeps the process alive runs into the time limit).
 */
async function jest(name, dir, node) {
  log(`${name}: jest --detectOpenHandles (the testing example)`);
  const timeoutMs = 2 * MINUTE;
  const result = await run(node, ['node_modules/jest/bin/jest.js', '--ci', '--detectOpenHandles', '--rootDir', 'dist'], {
    cwd: dir,
    timeoutMs,
    env: { NO_COLOR: '1' },
  });
  const passed = /Tests:\s+2 passed, 2 total/.test(result.output);
  const open = /Jest has detected the following \d+ open handles?/.test(result.output);
  const ok = result.code === 0 && passed && !open;
  record(
    `${name} jest --detectOpenHandles`,
    ok,
    ok ? '2 tests, no open handle' : `${describe(result, timeoutMs)}\n${indent(result.output)}`,
  );
}

// ---------------------------------------------------------------------------------------------
// 3. Clean the broker

async function cleanBroker(requireFrom) {
  const listed = async (what) => {
    const result = await run('rabbitmqctl', ['-q', what, 'name'], { cwd: ROOT, timeoutMs: MINUTE });
    if (result.code !== 0) throw new Error(`rabbitmqctl ${what} failed: ${result.output.trim()}`);
    return result.output
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.startsWith(PREFIX));
  };
  let amqp;
  for (const from of requireFrom) {
    try {
      amqp = createRequire(path.join(from, 'package.json'))('amqplib');
      break;
    } catch {
      // try the next install
    }
  }
  try {
    if (!amqp) throw new Error('no amqplib to clean up with');
    const [queues, exchanges] = await Promise.all([listed('list_queues'), listed('list_exchanges')]);
    const connection = await amqp.connect(AMQP_URL);
    try {
      const channel = await connection.createChannel();
      for (const queue of queues) await channel.deleteQueue(queue);
      for (const exchange of exchanges) await channel.deleteExchange(exchange);
      await channel.close();
    } finally {
      await connection.close();
    }
    const left = (await Promise.all([listed('list_queues'), listed('list_exchanges')])).flat();
    record(
      'broker cleanup',
      left.length === 0,
      left.length ? `still there: ${left.join(', ')}` : `deleted ${queues.length} queues, ${exchanges.length} exchanges`,
    );
  } catch (error) {
    record('broker cleanup', false, String(error));
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'nestjs-messaging-pack-'));
  log(`work dir ${tmp}, names ${PREFIX}-*`);
  process.once('SIGINT', () => {
    rmSync(tmp, { recursive: true, force: true });
    process.exit(130);
  });
  try {
    const [tarball, node24, node26] = await Promise.all([pack(tmp), nodeOf(24), nodeOf(26)]);
    const binaries = { 24: node24, 26: node26, this: process.execPath };
    const apps = Object.entries(APPS).map(([name, spec]) => {
      const nodes = spec.nodes.map((major) => ({ major, binary: binaries[major] }));
      return { name, spec, dir: path.join(tmp, name), node: nodes[0].binary, nodes };
    });
    const installed = await Promise.all(
      apps.map(async (app) => {
        const missing = app.nodes.find((node) => !node.binary);
        if (!tarball || missing) {
          record(`${app.name} install`, false, !tarball ? 'no tarball' : `no Node ${missing.major}`);
          return false;
        }
        writeApp(app.dir, app.name, app.spec, tarball);
        return install(app.name, app.dir, app.node);
      }),
    );
    const compiled = await Promise.all(
      apps.map(async (app, i) => {
        if (installed[i]) return typecheck(app.name, app.dir, app.node, app.spec);
        record(`${app.name} typecheck`, false, 'not run: install failed');
        return false;
      }),
    );
    let touchedBroker = false;
    for (const [i, app] of apps.entries()) {
      for (const node of app.nodes) {
        const run = app.nodes.length > 1 ? `${app.name} on Node ${node.major}` : app.name;
        if (compiled[i]) {
          touchedBroker = true;
          await start(run, app.dir, node.binary);
        } else record(`${run} run`, false, 'not run');
      }
      if (app.spec.jest) {
        if (compiled[i]) await jest(app.name, app.dir, app.node);
        else record(`${app.name} jest --detectOpenHandles`, false, 'not run');
      }
    }
    if (touchedBroker) await cleanBroker([...apps.map((app) => app.dir), ROOT]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const failed = results.filter((r) => !r.ok).length;
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`pack: ${results.length - failed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch((error) => {
  console.error(error);
  console.log(`pack: ${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length + 1} failed`);
  process.exitCode = 1;
});
