// Preload of bench/latency-split.js: stamps the AMQP frames an S2 child's sockets read (a
// basic.deliver at the head of a chunk) and the basic.publish frames they write, and leaves the
// stamps in BENCH_SPLIT_TRACE at exit. Only the public net.Socket methods are wrapped, and only
// for sockets to the broker's AMQP port.
'use strict';
const fs = require('fs');
const net = require('net');
const { performance } = require('perf_hooks');

const port = Number(new URL(JSON.parse(process.argv[2]).url).port || 5672);
const frames = [];
/** A frame's kind from its header: type 1 (method), class 60 (basic), method 60 (deliver) or 40 (publish). */
const kindOf = (buf) => {
  if (!Buffer.isBuffer(buf) || buf.length < 11 || buf[0] !== 1 || buf.readUInt16BE(7) !== 60) return undefined;
  const method = buf.readUInt16BE(9);
  return method === 60 ? 'deliver' : method === 40 ? 'publish' : undefined;
};
const stamp = (buf, bytes) => {
  const kind = kindOf(buf);
  if (kind) frames.push([performance.now(), kind, bytes]);
};

const { emit, write } = net.Socket.prototype;
net.Socket.prototype.emit = function (event, data) {
  if (event === 'data' && this.remotePort === port) stamp(data, data.length);
  return emit.apply(this, arguments);
};
net.Socket.prototype.write = function (data) {
  if (this.remotePort === port) stamp(data, data?.length ?? 0);
  return write.apply(this, arguments);
};
process.on('exit', () => fs.writeFileSync(process.env.BENCH_SPLIT_TRACE, JSON.stringify(frames)));
