'use strict';
/**
 * What the standalone bench scripts (payloads.js, batch.js) share: the built library (dist/lib,
 * `npm run build`, or the one BENCH_LIB names) with the Nest packages of the repository, the
 * broker URL, `--name value` arguments and medians.
 */
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const rootRequire = require('node:module').createRequire(path.join(ROOT, 'package.json'));
rootRequire('reflect-metadata');

const args = process.argv.slice(2);

module.exports = {
  rootRequire,
  lib: require(process.env.BENCH_LIB ? path.resolve(process.env.BENCH_LIB) : ROOT),
  nest: { ...rootRequire('@nestjs/common'), ...rootRequire('@nestjs/core') },
  AMQP_URL: process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  arg: (name, fallback) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback),
  median: (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)],
  /** Sends `count` messages to `queue`, at most `window` awaiting their confirm at once (as S1's publishAll does). */
  async sendAll(client, queue, count, payloadOf, window = 256) {
    const inFlight = new Set();
    for (let i = 0; i < count; i++) {
      const sent = client.send(queue, payloadOf(i)).finally(() => inFlight.delete(sent));
      inFlight.add(sent);
      if (inFlight.size >= window) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  },
};
