#!/usr/bin/env node
/**
 * Synchronous vs asynchronous (libuv thread pool) zlib for JSON bodies of 1 KB to 1 MB: wall and
 * CPU time per call, one call at a time. What lib/codec/compression.ts's OFF_LOOP_FROM_BYTES is
 * chosen from. `node bench/compression-sync-async.js`; no broker needed.
 */
'use strict';
const zlib = require('node:zlib');
const { promisify } = require('node:util');

const BROTLI = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } };
const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);
const gunzip = promisify(zlib.gunzip);
/** Each takes the raw body and its gzip form. */
const OPS = {
  'gzip sync': (raw) => zlib.gzipSync(raw),
  'gzip async': (raw) => gzip(raw),
  'br(q4) sync': (raw) => zlib.brotliCompressSync(raw, BROTLI),
  'br(q4) async': (raw) => brotli(raw, BROTLI),
  'gunzip sync': (raw, zipped) => zlib.gunzipSync(zipped),
  'gunzip async': (raw, zipped) => gunzip(zipped),
};

function body(bytes) {
  const items = [];
  for (let i = 0; ; i++) {
    items.push({ id: i, name: `item-${i}`, price: +((i * 7.31) % 100).toFixed(2), tags: ['a', `b${i % 13}`], active: i % 3 === 0 });
    const text = JSON.stringify(items);
    if (text.length >= bytes) return Buffer.from(text);
  }
}

async function time(count, op) {
  const cpu = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await op();
  const used = process.cpuUsage(cpu);
  return { wall: Number(process.hrtime.bigint() - t0) / 1e3 / count, cpu: (used.user + used.system) / count };
}

(async () => {
  console.log(
    `load ${require('node:os')
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (a shared machine: compare columns, not runs)`,
  );
  console.log(`| body | gzip size | ${Object.keys(OPS).join(' | ')} |  (µs per call, wall / CPU)`);
  for (const size of [1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024]) {
    const raw = body(size);
    const zipped = zlib.gzipSync(raw);
    const count = Math.max(20, Math.round(20e6 / size));
    const cells = [];
    for (const op of Object.values(OPS)) {
      await time(Math.ceil(count / 10), () => op(raw, zipped)); // warm-up
      const { wall, cpu } = await time(count, () => op(raw, zipped));
      cells.push(`${wall.toFixed(0)} / ${cpu.toFixed(0)}`);
    }
    console.log(`| ${raw.length} | ${zipped.length} | ${cells.join(' | ')} |`);
  }
})();
