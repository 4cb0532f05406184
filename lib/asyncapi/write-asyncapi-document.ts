import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { AsyncApiDocument } from './asyncapi-document';

/**
 * Writes the app's AsyncAPI document to `file` (as JSON), e.g. in CI: `app` is the app (or a Nest
 * application context of its root module), which needs no broker when its connections use
 * `memory://`; the document names the broker of each connection's `asyncApi.server`.
 */
export async function writeAsyncApiDocument(app: Pick<INestApplicationContext, 'get'>, file: string): Promise<void> {
  const document = app.get(AsyncApiDocument, { strict: false }).document();
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(document, null, 2)}\n`);
}
