import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { INestApplicationContext } from '@nestjs/common';
import { BrokerUnreachableError, RpcClient } from '../../lib';
import { appModule } from '../support/app';
import { Broker, BROKER_PORT, unique, waitFor } from '../support/broker';
import { CaptureLogger, connectionsOf, countingHandler, outcome, startAppLogged, Tally } from './helpers';

/**
 * RELIABILITY.md 29: amqps:// with a CA and a client certificate. The shared broker has no TLS
 * listener and its configuration is not ours to change, so the test puts a TLS terminator in front
 * of it: a Node `tls.Server` that demands a client certificate signed by a CA generated with openssl
 * for this run, and forwards the decrypted stream to the broker's plain port. The app speaks real
 * AMQP over real TLS end to end; the terminator records the certificate the client presented.
 */
describe('reliability: amqps with a CA and a client certificate', () => {
  let broker: Broker;
  let dir: string;
  let server: tls.Server;
  let port: number;
  const apps: INestApplicationContext[] = [];
  const handshakes: Array<{ authorized: boolean; subject?: string; error?: string }> = [];
  const sockets = new Set<net.Socket>();
  let pem: { ca: Buffer; cert: Buffer; key: Buffer; otherCert: Buffer; otherKey: Buffer };

  beforeAll(async () => {
    broker = await Broker.open();
    dir = mkdtempSync(join(tmpdir(), 'nestjs-messaging-tls-'));
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
    const issue = (name: string, cn: string, ca: string, ext?: string) => {
      openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      openssl(
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${ca}.crt`,
        '-CAkey',
        `${ca}.key`,
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '1',
        ...(ext ? ['-extfile', ext] : []),
      );
    };
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=nestjs-messaging test CA',
    );
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'other-ca.key',
      '-out',
      'other-ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=some other CA',
    );
    issue('server', 'localhost', 'ca', 'server.ext');
    issue('client', 'nestjs-messaging-test-client', 'ca', 'client.ext');
    issue('other', 'client-of-another-ca', 'other-ca', 'client.ext');
    const read = (file: string) => readFileSync(join(dir, file));
    pem = {
      ca: read('ca.crt'),
      cert: read('client.crt'),
      key: read('client.key'),
      otherCert: read('other.crt'),
      otherKey: read('other.key'),
    };

    server = tls.createServer({
      key: read('server.key'),
      cert: read('server.crt'),
      ca: read('ca.crt'),
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on('secureConnection', (socket) => {
      const peer = socket.getPeerCertificate();
      handshakes.push({ authorized: socket.authorized, subject: [peer?.subject?.CN].flat().join(',') });
      const upstream = net.connect(BROKER_PORT, '127.0.0.1');
      sockets.add(socket).add(upstream);
      for (const s of [socket, upstream]) {
        s.on('error', () => undefined);
        s.on('close', () => {
          sockets.delete(s);
          socket.destroy();
          upstream.destroy();
        });
      }
      socket.pipe(upstream).pipe(socket);
    });
    server.on('tlsClientError', (error) => handshakes.push({ authorized: false, error: error.message }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    for (const app of apps) await app.close().catch(() => undefined);
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await broker.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the CA and client certificate of the `tls` option, presents the client certificate, and messages flow', async () => {
    const serviceName = unique('svc-tls');
    const queue = broker.queue(unique('tls'));
    const tally = new Tally();
    const before = handshakes.length;
    const app = await startAppLogged(
      appModule(
        { uri: `amqps://guest:guest@localhost:${port}`, serviceName, tls: { ca: pem.ca, cert: pem.cert, key: pem.key } },
        { providers: [countingHandler(queue, tally)] },
      ),
      new CaptureLogger(),
    );
    apps.push(app);
    const id = await app.get(RpcClient).send(queue, { over: 'tls' });
    await waitFor(() => tally.handled.has(id), 'a message sent and consumed over TLS');
    const ours = handshakes.slice(before);
    console.log(`[reliability 29] TLS handshakes: ${JSON.stringify(ours)}`);
    // Two connections (publisher, consumer), each authenticated by its client certificate.
    expect(ours).toEqual([
      { authorized: true, subject: 'nestjs-messaging-test-client' },
      { authorized: true, subject: 'nestjs-messaging-test-client' },
    ]);
    expect((await connectionsOf(serviceName)).map((c) => c.name).sort()).toEqual([`${serviceName}:consumer`, `${serviceName}:publisher`]);
  }, 30_000);

  it('without the CA the server certificate is refused: BrokerUnreachableError', async () => {
    const result = await outcome(
      startAppLogged(
        appModule({
          uri: `amqps://guest:guest@localhost:${port}`,
          serviceName: unique('svc-tls-noca'),
          registerHandlers: false,
          reconnect: { startupTimeoutMs: 800, initialDelayMs: 100, maxDelayMs: 200 },
        }),
        new CaptureLogger(),
      ),
    );
    expect(result.ok).toBe(false);
    const error = (result as { error: unknown }).error as Error;
    console.log(`[reliability 29] without the CA: ${error.message}`);
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    expect(error.message).toMatch(/certificate/i);
  }, 20_000);

  it('a client certificate from another CA is refused by the server: BrokerUnreachableError', async () => {
    const before = handshakes.length;
    const result = await outcome(
      startAppLogged(
        appModule({
          uri: `amqps://guest:guest@localhost:${port}`,
          serviceName: unique('svc-tls-other'),
          registerHandlers: false,
          tls: { ca: pem.ca, cert: pem.otherCert, key: pem.otherKey },
          reconnect: { startupTimeoutMs: 800, initialDelayMs: 100, maxDelayMs: 200 },
        }),
        new CaptureLogger(),
      ),
    );
    expect(result.ok).toBe(false);
    const error = (result as { error: unknown }).error as Error;
    console.log(
      `[reliability 29] client certificate of another CA: ${error.message}; server saw ${JSON.stringify(handshakes.slice(before, before + 1))}`,
    );
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    expect(handshakes.slice(before).every((h) => !h.authorized)).toBe(true);
    expect(handshakes.slice(before).length).toBeGreaterThan(0);
  }, 20_000);
});
