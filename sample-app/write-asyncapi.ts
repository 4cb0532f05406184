import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { writeAsyncApiDocument } from '../lib';
import { AppModule } from './app.module';
import { loadConfig } from './config';

/**
 * `npm run asyncapi`: writes the sample's AsyncAPI document to asyncapi.json (or the file named
 * as the first argument). No broker and no database: the app runs on the in-memory broker, without
 * HTTP, just long enough for the document, which comes from its metadata.
 */
async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, ROLE: 'all', AMQP_URL: '', DATABASE_URL: '', TRACING: 'off' });
  const app = await NestFactory.createApplicationContext(AppModule.register(config), { logger: ['error', 'warn'], abortOnError: false });
  const file = process.argv[2] ?? 'asyncapi.json';
  try {
    await writeAsyncApiDocument(app, file);
  } finally {
    await app.close();
  }
  console.log(`AsyncAPI document written to ${file}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
