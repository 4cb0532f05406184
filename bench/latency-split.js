#!/usr/bin/env node
// `node bench/latency-split.js [--node <binary>] [--reps N] [--url amqp://…] [--impl raw,raw:wire,ours,golevelup]`
//
// Where S2's time per call goes: each run of S2 (bench/dist/child.js, as the runner runs it) gets
// a preload that stamps every AMQP frame its sockets read and every basic.publish they write
// (performance.now(), in the process). With one call in flight at a time that splits a call into
//   server: a request's delivery read -> its reply's publish written (decode, handler, encode),
//   client: a reply's delivery read -> the next request's publish written (resolve, encode),
//   rest:   p50 minus both (the broker, the kernel, the event loop between socket and code).
// Medians over calls, then over repetitions. A diagnostic beside the record (`npm run bench`), not in it:
// the stamps cost every read and write a little. Run `node bench/run.js --quick --only S2` once
// before, so that bench/dist is built. `--node` takes what the runner's does (a path, or 22/24).
// A child that gives no result within 90 s is killed and the split fails.
'use strict';
const { fork } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const { median } = require('./dist/stats');
const { resolveNode } = require('./dist/node-binary');

const BENCH = __dirname;
const CHILD_TIMEOUT_MS = 90_000;
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const node = resolveNode(option('node', undefined), path.resolve(BENCH, '..'));
const reps = Number(option('reps', '3'));
const url = option('url', process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
const impls = option('impl', 'raw,raw:wire,ours,golevelup').split(',');
const REQUEST_BYTES = 1000; // S2's request body is about 1 KB, its reply a few bytes

/** One S2 child with the stamping preload: its p50 and the stamps. */
function runOnce(impl, rep) {
  const trace = path.join(os.tmpdir(), `nmbench-split-${process.pid}-${rep}.json`);
  const spec = { scenario: 'S2', entry: impl, url, queue: `nmbench.split${Date.now()}.S2.${impl.replace(':', '-')}.${rep}`, quick: false };
  return new Promise((resolve, reject) => {
    const child = fork(path.join(BENCH, 'dist/child.js'), [JSON.stringify(spec)], {
      execPath: node.path,
      execArgv: ['-r', path.join(BENCH, 'latency-split-preload.js')],
      env: { ...process.env, BENCH_SPLIT_TRACE: trace },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    let result;
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('message', (message) => (result = message));
    child.on('exit', () => {
      clearTimeout(timer);
      if (!result?.ok) return reject(new Error(`${impl}: ${result?.error ?? 'the child exited without a result'}`));
      const frames = JSON.parse(fs.readFileSync(trace, 'utf8'));
      fs.rmSync(trace, { force: true });
      resolve({ p50: result.metrics.p50Us, ...split(frames) });
    });
  });
}

/** Each delivery read to the publish written next: a request's (server) or a reply's (client). */
function split(frames) {
  const server = [];
  const client = [];
  for (let i = 0; i < frames.length; i++) {
    const [at, kind, bytes] = frames[i];
    if (kind !== 'deliver') continue;
    const next = frames.slice(i + 1, i + 8).find((frame) => frame[1] === 'publish');
    if (next) (bytes > REQUEST_BYTES ? server : client).push((next[0] - at) * 1000);
  }
  return { server: median(server), client: median(client), calls: server.length };
}

async function main() {
  const rows = [];
  for (const impl of impls) {
    const runs = [];
    for (let rep = 0; rep < reps; rep++) runs.push(await runOnce(impl, rep));
    const p50 = median(runs.map((run) => run.p50));
    const server = median(runs.map((run) => run.server));
    const client = median(runs.map((run) => run.client));
    rows.push(
      `| ${impl} | ${p50.toFixed(0)} | ${server.toFixed(0)} | ${Number.isNaN(client) ? '–' : client.toFixed(0)} | ${(p50 - server - (client || 0)).toFixed(0)} |`,
    );
  }
  console.log(`S2 split, ${reps} repetition(s), Node ${node.version} (${node.path}), ${url.replace(/\/\/[^@]*@/, '//')}\n`);
  console.log('| impl | p50 µs | server µs (request read → reply written) | client µs (reply read → next request written) | rest µs |');
  console.log('|---|---:|---:|---:|---:|');
  for (const row of rows) console.log(row);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
