/**
 * The companion runs RESULTS.md links to: the reports kept with `--record <name>` as
 * bench/RESULTS.<name>.md (the same scenarios on another Node, on another broker), each named by
 * the lines of its own header that say what it ran on.
 */
import * as fs from 'fs';
import * as path from 'path';

const HEADER_LINES = ['date', 'Node', 'broker', 'command'];

export function companionRuns(benchDir: string): string {
  const files = fs
    .readdirSync(benchDir)
    .filter((f) => /^RESULTS\.[a-z0-9-]+\.md$/i.test(f))
    .sort();
  if (files.length === 0) return '';
  const lines = [
    '',
    '## Companion runs',
    '',
    'The same scenarios on another Node or another broker, each its own run with raw amqplib as its reference (`--record`):',
    '',
  ];
  for (const file of files) {
    const text = fs.readFileSync(path.join(benchDir, file), 'utf8');
    const said = HEADER_LINES.map((name) => text.match(new RegExp(`^- \\*\\*${name}\\*\\*: (.+)$`, 'm'))?.[1]).filter(Boolean);
    lines.push(`- [${file}](${file}): ${said.join('; ')}`);
  }
  return lines.join('\n') + '\n';
}
