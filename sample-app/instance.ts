import { hostname } from 'node:os';

/** Names this process in replies and logs: the container's hostname and the pid. */
export const INSTANCE = `${hostname()}-${process.pid}`;
