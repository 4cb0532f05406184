import { memoryBrokerName } from '../transport/memory/broker-registry';
import { isMemoryUrl, vhostOf } from '../util/url';

/** An AsyncAPI 3 Server Object, as the document writes one. */
export interface ServerObject {
  host: string;
  protocol: string;
  protocolVersion?: string;
  pathname?: string;
  title: string;
  description: string;
}

/** A connection's broker: its Server Object, and the virtual host its queues and exchanges are in. */
export interface DescribedServer {
  server: ServerObject;
  vhost: string;
}

/**
 * The server of one connection, from its URLs: host, port and virtual host only. User names,
 * passwords and query parameters never reach the document (it may be served or published). A
 * cluster is one server, named by its first node; the description lists them all.
 */
export function describeServer(connection: string, urls: string[]): DescribedServer {
  const [first] = urls;
  if (isMemoryUrl(first)) {
    const server = {
      host: memoryBrokerName(first),
      protocol: 'memory',
      title: connection,
      description: `The in-process broker (${first}): messages live in this process only. Describe the real broker with the "asyncApi.server" option.`,
    };
    return { server, vhost: '/' };
  }
  const url = new URL(first);
  const vhost = vhostOf(url);
  const nodes = urls.map((node) => new URL(node).host);
  const server = {
    host: url.host,
    protocol: url.protocol.slice(0, -1),
    protocolVersion: '0.9.1',
    ...(vhost === '/' ? {} : { pathname: url.pathname }),
    title: connection,
    description:
      `RabbitMQ, virtual host "${vhost}"` + (nodes.length > 1 ? `; a cluster, reached through any of its nodes ${nodes.join(', ')}` : ''),
  };
  return { server, vhost };
}
