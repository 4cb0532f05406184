// One file-naming rule for lib/, test/, sample-app/, soak/, bench/ and scripts/: kebab-case words,
// then at most one role from the list below (Nest's own vocabulary and this library's few
// implementation kinds), then the extension; tests end in `.spec`.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const ROLES = [
  'module',
  'controller',
  'service',
  'handler',
  'guard',
  'interceptor',
  'filter',
  'decorator',
  'interface',
  'options',
  'constants',
  'errors',
  'config',
  'transport',
  'telemetry',
  'store',
];
const RULE = new RegExp(`^[a-z0-9]+(-[a-z0-9]+)*(\\.(${ROLES.join('|')}))?(\\.spec)?\\.(ts|mts|cts|js|mjs|cjs)$`);

const files = execFileSync('git', ['ls-files', 'lib', 'test', 'sample-app', 'soak', 'bench', 'scripts'], { encoding: 'utf8' })
  .split('\n')
  .filter((file) => /\.(ts|mts|cts|js|mjs|cjs)$/.test(file) && !file.endsWith('.d.ts'));
const wrong = files.filter((file) => !RULE.test(path.basename(file)));
if (wrong.length > 0) {
  console.error(`File names that break the rule (kebab-case, then at most one of .${ROLES.join(', .')}, then .spec for tests):`);
  for (const file of wrong) console.error(`  ${file}`);
  process.exit(1);
}
console.log(`file names: ${files.length} files follow the rule`);
