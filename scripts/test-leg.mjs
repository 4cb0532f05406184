#!/usr/bin/env node
/**
 * Runs the whole test suite on another stack: `node scripts/test-leg.mjs nest12 [vitest args]`;
 * `--install-only` installs the leg's dependencies and stops (CI does that early, in the background).
 *
 * A leg is a folder under legs/ with its own package.json and lockfile (NestJS 12, nestjs-cls 7,
 * and Node 24 from the `node` npm package). The library, the sample and the tests are copied into
 * it unchanged, so the build, the suite and every process the tests spawn resolve that stack's
 * packages from the leg's own node_modules and run on the leg's Node.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const SOURCES = ['lib', 'sample-app', 'test', 'tsconfig.json', 'tsconfig.build.json', 'vitest.config.mts'];

const [name, ...vitestArgs] = process.argv.slice(2);
if (!name) {
  console.error('usage: node scripts/test-leg.mjs <leg> [vitest arguments]   (legs: see legs/)');
  process.exit(2);
}
const leg = join(ROOT, 'legs', name);
if (!existsSync(join(leg, 'package.json'))) {
  console.error(`no leg "${name}": legs/${name}/package.json is missing`);
  process.exit(2);
}

const run = (command, args, env = process.env) => execFileSync(command, args, { cwd: leg, stdio: 'inherit', env });

// Reinstall only when the lockfile changed since the last install (npm ci wipes node_modules).
const stamp = join(leg, 'node_modules', '.leg-installed');
const lock = readFileSync(join(leg, 'package-lock.json'), 'utf8');
if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== lock) {
  console.log(`leg ${name}: installing its dependencies (npm ci)`);
  run('npm', ['ci', '--no-audit', '--no-fund']);
  writeFileSync(stamp, lock);
}
if (vitestArgs.includes('--install-only')) process.exit(0);

for (const source of SOURCES) {
  rmSync(join(leg, source), { recursive: true, force: true });
  cpSync(join(ROOT, source), join(leg, source), { recursive: true });
}
rmSync(join(leg, 'dist'), { recursive: true, force: true });

const bin = join(leg, 'node_modules', '.bin');
const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` };
const node = join(bin, 'node');
const version = (pkg) => JSON.parse(readFileSync(join(leg, 'node_modules', pkg, 'package.json'), 'utf8')).version;
console.log(
  `leg ${name}: Node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()}, @nestjs/core ${version('@nestjs/core')}, ` +
    `nestjs-cls ${version('nestjs-cls')}, amqplib ${version('amqplib')} (installed ${new Date(statSync(stamp).mtimeMs).toISOString()})`,
);
run(node, [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], env);
try {
  run(node, [join('node_modules', 'vitest', 'vitest.mjs'), 'run', ...vitestArgs], env);
} catch (error) {
  process.exit(typeof error.status === 'number' ? error.status : 1);
}
