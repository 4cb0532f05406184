import { type INestApplicationContext, Logger, type ModuleMetadata, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Module } from '@nestjs/common';
import { MessagingModule, type MessagingOptions } from '../../lib';
import { BROKER_URL } from './broker';

/** Builds a root module around MessagingModule.forRoot and the given providers. */
export function appModule(options: Partial<MessagingOptions>, metadata: ModuleMetadata = {}): Type<unknown> {
  @Module({
    ...metadata,
    imports: [MessagingModule.forRoot({ uri: BROKER_URL, ...options }), ...(metadata.imports ?? [])],
  })
  class TestAppModule {}
  return TestAppModule;
}

/** Starts a Nest application context (a worker, no HTTP) that rethrows startup errors. */
export async function startApp(module: Type<unknown>): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(module, { logger: testLogger(), abortOnError: false });
  await app.init();
  return app;
}

/** Test runs log only warnings and errors unless DEBUG_LOGS is set. */
export function testLogger(): false | ('error' | 'warn' | 'log')[] {
  return process.env.DEBUG_LOGS ? ['error', 'warn', 'log'] : ['error'];
}

export { Logger };

/**
 * The apps a test file starts: `start()` them in a test, they are closed after each test (so a
 * failing assertion never leaves a connection open).
 */
export function appsUnderTest() {
  const apps: INestApplicationContext[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });
  return {
    async start(module: Type<unknown>): Promise<INestApplicationContext> {
      const app = await startApp(module);
      apps.push(app);
      return app;
    },
    /** Closes the apps started so far now, e.g. to check what they leave behind. */
    async closeAll(): Promise<void> {
      for (const app of apps.splice(0)) await app.close();
    },
  };
}
