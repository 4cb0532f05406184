/** The module's two connections: one publishes (and receives replies), one consumes. */
export type ConnectionRole = 'publisher' | 'consumer';
