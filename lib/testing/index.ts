// The `nestjs-messaging/testing` entry: what tests use beside `uri: 'memory://'`.
export { MessagingHarness } from './messaging-harness';
export type { PublishedMessage, DeadLetteredMessage } from './messaging-harness';
export { InjectMessagingHarness, getMessagingHarnessToken } from './inject-messaging-harness.decorator';
