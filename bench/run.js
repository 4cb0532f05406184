#!/usr/bin/env node
// `npm run bench [-- options]`: installs what the benchmark needs, then runs it (bench/runner.ts).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const BENCH = __dirname;
const ROOT = path.resolve(BENCH, '..');

function sh(cmd, cwd) {
  console.log(`[bench] ${cmd}  (in ${path.relative(process.cwd(), cwd) || '.'})`);
  return spawnSync(cmd, { cwd, stdio: 'inherit', shell: true }).status === 0;
}

function newest(dir, exts) {
  let t = 0;
  for (const f of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, f.name);
    if (f.isDirectory() && !['node_modules', 'dist', 'results'].includes(f.name)) t = Math.max(t, newest(p, exts));
    else if (f.isFile() && exts.some((e) => f.name.endsWith(e))) t = Math.max(t, fs.statSync(p).mtimeMs);
  }
  return t;
}

// 1. the peers and the harness's own dependencies (bench/package-lock.json)
if (!fs.existsSync(path.join(BENCH, 'node_modules')) && !sh('npm ci --prefix bench', ROOT)) process.exit(1);

// 2. this repository's library
if (!fs.existsSync(path.join(ROOT, 'dist/lib/index.js'))) {
  const ok = (fs.existsSync(path.join(ROOT, 'node_modules')) || sh('npm ci', ROOT)) && sh('npm run build', ROOT);
  if (!ok || !fs.existsSync(path.join(ROOT, 'dist/lib/index.js'))) {
    process.env.BENCH_OURS_UNAVAILABLE = 'the library did not build (npm run build); nestjs-messaging runs skipped';
    console.error(`[bench] ${process.env.BENCH_OURS_UNAVAILABLE}`);
  }
} else if (
  fs.existsSync(path.join(ROOT, 'lib')) &&
  newest(path.join(ROOT, 'lib'), ['.ts']) > fs.statSync(path.join(ROOT, 'dist/lib/index.js')).mtimeMs
) {
  console.warn('[bench] note: lib/ has changed since dist/lib was built; `npm run build` to measure the current code');
}

// 3. the harness itself (TypeScript -> bench/dist), when a source is newer than the last build
const stamp = path.join(BENCH, 'dist/.stamp');
const built = fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
if (newest(BENCH, ['.ts', 'tsconfig.json']) > built) {
  if (!sh(`node ${path.join('node_modules', 'typescript', 'bin', 'tsc')} -p tsconfig.json`, BENCH)) process.exit(1);
  fs.writeFileSync(stamp, new Date().toISOString());
}

// 4. run
require('./dist/runner.js')
  .main(process.argv.slice(2))
  .then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? err.stack : err);
      process.exit(1);
    },
  );
