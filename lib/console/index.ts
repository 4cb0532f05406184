export { MessagingConsoleModule } from './messaging-console.module';
export type { MessagingConsoleOptions } from './messaging-console-options.interface';
