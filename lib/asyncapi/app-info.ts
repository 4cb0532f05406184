import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AsyncApiInfo } from '../interfaces/asyncapi-options.interface';

/** The document's `info`: what `asyncApi.info` gives, else the app's package.json (in `cwd`), else placeholders. */
export function appInfo(given: AsyncApiInfo = {}, cwd = process.cwd()): { title: string; version: string; description?: string } {
  const pkg = packageJson(cwd);
  const description = given.description ?? pkg.description;
  return {
    title: given.title ?? pkg.name ?? 'nestjs-messaging app',
    version: given.version ?? pkg.version ?? '0.0.0',
    ...(description ? { description } : {}),
  };
}

function packageJson(cwd: string): AsyncApiInfo & { name?: string } {
  let pkg: unknown;
  try {
    pkg = JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8'));
  } catch {
    // No package.json (or not JSON) where the app runs: the placeholders do.
    return {};
  }
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  const { name, version, description } = (pkg ?? {}) as Record<string, unknown>;
  return { name: text(name), version: text(version), description: text(description) };
}
