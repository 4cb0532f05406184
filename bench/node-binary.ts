/**
 * `--node`: the Node binary every child process runs on (the runner itself stays on the Node that
 * started it). A path is taken as it is; a major version (`--node 22`) is looked for where this
 * repository already keeps Node binaries — the one running, the nest12 leg's (`npm run test:nest12`
 * installs Node 24 there), the pack test's cache — and otherwise installed once from the npm
 * registry's `node` package into node_modules/.cache/nestjs-messaging-bench-node/<major>, as
 * test/pack/pack-install.mjs does for the Node versions it runs on.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface NodeBinary {
  /** what the children are forked with (`execPath`) */
  path: string;
  /** what it says it is, e.g. "v24.21.0" */
  version: string;
}

const INSTALL_TIMEOUT_MS = 5 * 60_000;

function versionOf(binary: string): string | undefined {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  const v = r.status === 0 ? r.stdout.trim() : '';
  return /^v\d+\.\d+\.\d+/.test(v) ? v : undefined;
}

export function resolveNode(spec: string | undefined, root: string): NodeBinary {
  if (!spec) return { path: process.execPath, version: process.version };
  if (!/^\d+$/.test(spec)) {
    const binary = path.resolve(spec);
    const version = fs.existsSync(binary) ? versionOf(binary) : undefined;
    if (!version) throw new Error(`--node ${spec}: not a Node binary that runs (${binary})`);
    return { path: binary, version };
  }
  const cache = path.join(root, 'node_modules/.cache/nestjs-messaging-bench-node', spec);
  const installed = path.join(cache, 'node_modules/.bin/node');
  const candidates = [
    process.execPath,
    path.join(root, 'legs/nest12/node_modules/.bin/node'),
    installed,
    path.join(root, `node_modules/.cache/nestjs-messaging-pack/node${spec}/node_modules/.bin/node`),
  ];
  for (const candidate of candidates) {
    if (!fs.existsSync(candidate)) continue;
    const version = versionOf(candidate);
    if (version?.startsWith(`v${spec}.`)) return { path: candidate, version };
  }
  console.log(`[bench] installing node@${spec} from the npm registry into ${path.relative(root, cache)} (once)`);
  fs.mkdirSync(cache, { recursive: true });
  if (!fs.existsSync(path.join(cache, 'package.json'))) fs.writeFileSync(path.join(cache, 'package.json'), '{ "private": true }\n');
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', `node@${spec}`], {
    cwd: cache,
    stdio: 'inherit',
    timeout: INSTALL_TIMEOUT_MS,
  });
  const version = fs.existsSync(installed) ? versionOf(installed) : undefined;
  if (r.status !== 0 || !version?.startsWith(`v${spec}.`)) {
    throw new Error(
      `--node ${spec}: could not install node@${spec} into ${cache} (npm exited with ${r.status ?? r.signal ?? r.error?.message})`,
    );
  }
  return { path: installed, version };
}
