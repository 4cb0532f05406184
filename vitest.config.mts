import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

/**
 * One broker serves every integration test, and some tests act on all of it (closing every
 * connection, memory alarms), so files run one at a time in a real child process (its `process`
 * is the one the module sees, unlike a sandbox). SWC compiles the TypeScript because Nest's
 * dependency injection needs `emitDecoratorMetadata`, which esbuild does not emit.
 */
export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    include: ['test/**/*.spec.ts'],
    globals: true,
    pool: 'forks',
    fileParallelism: false,
    execArgv: ['--expose-gc'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    globalSetup: ['test/support/global-setup.mjs'],
    reporters: ['default', './test/support/summary-reporter.mjs'],
  },
});
