/**
 * What RabbitMQ refused when amqplib's opening handshake failed. amqplib gives these failures no
 * code, only its own wording, so this is the one place that reads it (test/integration/
 * amqplib-internals.spec.ts fails if an amqplib release words them otherwise):
 * - a `connection.close` answering the login (403 ACCESS_REFUSED): the user name or password;
 * - a `connection.close` answering `connection.open`: the vhost (missing, or not this user's).
 */
export type HandshakeRefusal = 'login' | 'vhost';

export function handshakeRefusal(error: unknown): HandshakeRefusal | undefined {
  if (!(error instanceof Error)) return undefined;
  if (/^Handshake terminated by server: 403 \(ACCESS-REFUSED\)/.test(error.message)) return 'login';
  if (/^Expected ConnectionOpenOk; got <ConnectionClose /.test(error.message)) return 'vhost';
  return undefined;
}
