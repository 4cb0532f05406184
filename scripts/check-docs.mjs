#!/usr/bin/env node
/**
 * `npm run lint:docs`: the documentation cannot rot silently.
 *
 * 1. Every ```ts / ```typescript block of README.md and docs/*.md is written to a file of its own
 *    in a temporary folder and type-checked, all in one TypeScript program, with the settings of
 *    tsconfig.json (strict, decorators with metadata, isolated modules) and `nestjs-messaging` and
 *    its subpath entries mapped to the sources in lib/ (package.json "exports"). An unused import
 *    is an error; unused variables and parameters are not (a snippet may show a value it does not
 *    use). Errors point at the markdown: `docs/rpc.md:42:7`.
 * 2. A block whose fence follows a `<!-- run -->` line also runs: compiled to CommonJS (lib/ too,
 *    on the fly), on `memory://` (AMQP_URL unset), bounded by RUN_TIMEOUT_MS; it must exit with 0.
 * 3. Every relative link and `#anchor` in those files must resolve: the file exists and, for a
 *    markdown file, so does the heading the anchor names (GitHub's slugs).
 *
 * `node scripts/check-docs.mjs [--verbose]`; exits 1 on any failure. Nothing is left behind.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUN_MARKER = '<!-- run -->';
const RUN_TIMEOUT_MS = 30_000;
const TS_LANGUAGES = new Set(['ts', 'typescript']);
/** TypeScript's "declared but never read" family: kept only when they point into an import. */
const UNUSED = new Set([6133, 6138, 6196, 6198, 6199, 6205]);
const verbose = process.argv.includes('--verbose');
const started = performance.now();

const markdownFiles = [
  'README.md',
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];
const problems = [];
const documents = new Map(markdownFiles.map((file) => [file, parseMarkdown(file)]));

for (const [file, document] of documents) checkLinks(file, document);

const blocks = [...documents.values()].flatMap((document) => document.blocks);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nestjs-messaging-docs-'));
let ran;
try {
  // The blocks import @nestjs/common and the like as an app would: from the project's node_modules.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(tmp, 'node_modules'), 'dir');
  for (const block of blocks) {
    block.path = path.join(tmp, `${block.file.replace(/[^a-z0-9]+/gi, '-')}-${block.line}.ts`);
    // `export {}` makes every block a module of its own (no clash between two blocks' names); it
    // goes last, so the block's lines keep their numbers.
    fs.writeFileSync(block.path, `${block.code}\nexport {};\n`);
  }
  typeCheck(blocks);
  if (verbose) console.log(`type-checked in ${Math.round(performance.now() - started)} ms`);
  // A block that does not compile is not run: its type errors say more than its crash would.
  ran = runBlocks(blocks.filter((block) => block.run && !block.failed));
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

const seconds = ((performance.now() - started) / 1000).toFixed(1);
if (problems.length > 0) {
  for (const problem of problems) console.error(problem);
  console.error(`docs: ${problems.length} problem(s) in ${markdownFiles.length} files (${seconds} s)`);
  process.exit(1);
}
console.log(
  `docs: ${markdownFiles.length} files, ${blocks.length} TypeScript blocks type-checked, ${ran} run, ` +
    `${linkCount()} links resolved (${seconds} s)`,
);

/** The fenced blocks, headings and links of a markdown file, with their line numbers (1-based). */
function parseMarkdown(file) {
  const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  const blocks = [];
  const headings = [];
  const prose = []; // the file with fenced blocks blanked, for the link search
  let fence = null;
  lines.forEach((text, index) => {
    const line = index + 1;
    if (fence) {
      prose.push('');
      const close = text.match(/^\s*(`{3,}|~{3,})\s*$/);
      if (close && close[1][0] === fence.marker[0] && close[1].length >= fence.marker.length) {
        if (fence.block) blocks.push(fence.block);
        fence = null;
      } else if (fence.block) {
        // Blocks inside list items are indented: the indentation of the fence is not code.
        fence.block.lines.push(text.startsWith(fence.indent) ? text.slice(fence.indent.length) : text.trimStart());
      }
      return;
    }
    const open = text.match(/^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/);
    if (open) {
      prose.push('');
      const language = open[3].toLowerCase();
      if (lines[index - 1]?.trim() === RUN_MARKER && !TS_LANGUAGES.has(language)) {
        problems.push(`${file}:${line}: ${RUN_MARKER} before a block that is not TypeScript`);
      }
      const block = TS_LANGUAGES.has(language) ? { file, line, lines: [], run: lines[index - 1]?.trim() === RUN_MARKER } : null;
      fence = { marker: open[2], indent: open[1], block };
      return;
    }
    prose.push(text);
    const heading = text.match(/^#{1,6}\s+(.*?)\s*#*\s*$/);
    if (heading) headings.push(heading[1]);
  });
  if (fence) problems.push(`${file}:${fence.block?.line ?? '?'}: a code fence that is never closed`);
  for (const block of blocks) {
    // Line 1 of the block's file is the line after the fence.
    block.code = block.lines.join('\n');
    delete block.lines;
  }
  return { blocks, anchors: anchorsOf(headings), prose: prose.join('\n'), links: [] };
}

/** GitHub's anchors for a file's headings: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(headings) {
  const seen = new Map();
  const anchors = new Set();
  for (const heading of headings) {
    const text = heading
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
      .replace(/<[^>]+>/g, '') // inline HTML
      .replace(/`/g, '');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** Relative links and anchors of one file: the file must exist, and the heading an anchor names. */
function checkLinks(file, document) {
  // Code spans (which may run over a line break) are not links: blank them, keeping the lines.
  const text = document.prose.replace(/(`+)[\s\S]*?[^`]\1(?!`)/g, (span) => span.replace(/[^\n]/g, ' '));
  for (const match of text.matchAll(/!?\[(?:[^\]]|\][^(])*?\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const target = match[1];
    const line = text.slice(0, match.index).split('\n').length;
    document.links.push(target);
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ...
    const [pathPart, anchor] = target.split('#', 2);
    let targetFile = file;
    if (pathPart !== '') {
      const resolved = path.resolve(path.dirname(path.join(ROOT, file)), decodeURI(pathPart));
      if (!fs.existsSync(resolved)) {
        problems.push(`${file}:${line}: broken link ${target}: ${path.relative(ROOT, resolved)} does not exist`);
        continue;
      }
      targetFile = path.relative(ROOT, resolved);
    }
    if (anchor === undefined || !targetFile.endsWith('.md')) continue;
    const anchors = documents.get(targetFile)?.anchors ?? parseMarkdown(targetFile).anchors;
    if (!anchors.has(decodeURI(anchor).toLowerCase())) {
      problems.push(`${file}:${line}: broken link ${target}: ${targetFile} has no heading #${anchor}`);
    }
  }
}

function linkCount() {
  return [...documents.values()].reduce((sum, document) => sum + document.links.length, 0);
}

/** The package's entries, by the name an app imports, mapped to their sources in lib/. */
function entries() {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const found = {};
  for (const [subpath, conditions] of Object.entries(manifest.exports ?? {})) {
    const built = conditions?.require?.default ?? conditions?.default;
    const source = typeof built === 'string' && built.match(/^\.\/dist\/(lib\/.*)\.js$/)?.[1];
    if (!source || !fs.existsSync(path.join(ROOT, `${source}.ts`))) continue;
    found[path.posix.join(manifest.name, subpath)] = path.join(ROOT, `${source}.ts`);
  }
  // The console ships beside the others; its entry is mapped as soon as its sources exist.
  const console_ = path.join(ROOT, 'lib/console/index.ts');
  if (fs.existsSync(console_)) found[`${manifest.name}/console`] ??= console_;
  return found;
}

function typeCheck(blocks) {
  const { config, error } = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const paths = Object.fromEntries(Object.entries(entries()).map(([name, file]) => [name, [file]]));
  const compilerOptions = {
    ...config.compilerOptions,
    // What a snippet is allowed that the library is not: a value or a parameter it only shows.
    noUnusedLocals: true, // unused imports are errors; other unused names are filtered out below
    noUnusedParameters: false,
    // Only what an app's code sees: no test globals, nothing written.
    types: ['node'],
    typeRoots: [path.join(ROOT, 'node_modules/@types')],
    paths,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    incremental: false,
    rootDir: undefined,
    outDir: undefined,
  };
  const parsed = ts.parseJsonConfigFileContent(
    { compilerOptions, files: blocks.map((block) => block.path) },
    ts.sys,
    path.dirname(blocks[0]?.path ?? tmp),
  );
  for (const diagnostic of parsed.errors) problems.push(`tsconfig: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`);
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  if (verbose) console.log(`program of ${program.getSourceFiles().length} files built in ${Math.round(performance.now() - started)} ms`);
  for (const diagnostic of program.getOptionsDiagnostics())
    problems.push(`tsc: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`);
  for (const block of blocks) {
    const source = program.getSourceFile(block.path);
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
    for (const diagnostic of diagnostics) {
      if (UNUSED.has(diagnostic.code) && !insideImport(source, diagnostic.start)) continue;
      const where =
        diagnostic.file && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start) : null;
      const location = where ? `${block.file}:${block.line + where.line + 1}:${where.character + 1}` : `${block.file}:${block.line}`;
      problems.push(`${location}: TS${diagnostic.code}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n  ')}`);
      block.failed = true;
    }
  }
  // Global diagnostics too (a `types` entry that is missing); errors inside lib/ are tsc's and ESLint's to report.
  for (const diagnostic of program.getGlobalDiagnostics())
    problems.push(`tsc: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`);
}

function insideImport(source, position) {
  if (position === undefined) return false;
  return source.statements.some((statement) => ts.isImportDeclaration(statement) && statement.pos <= position && position < statement.end);
}

/** Runs the marked blocks one after the other, each in a fresh Node process on the in-memory broker. */
function runBlocks(runnable) {
  if (runnable.length === 0) return 0;
  const register = path.join(tmp, 'register.cjs');
  fs.writeFileSync(register, registerSource());
  const env = { ...process.env, NO_COLOR: '1' };
  delete env.AMQP_URL;
  delete env.NODE_OPTIONS;
  for (const block of runnable) {
    const begun = performance.now();
    const result = spawnSync(process.execPath, ['--enable-source-maps', '--require', register, block.path], {
      cwd: tmp,
      env,
      encoding: 'utf8',
      timeout: RUN_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    // A stack trace names the block's temporary file: name the markdown line instead.
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`
      .trim()
      .replaceAll(new RegExp(`${escapeRegExp(block.path)}:(\\d+)`, 'g'), (_, line) => `${block.file}:${block.line + Number(line)}`);
    const where = `${block.file}:${block.line}`;
    if (result.error?.code === 'ETIMEDOUT' || result.signal) {
      problems.push(
        `${where}: the block did not end within ${RUN_TIMEOUT_MS / 1000} s (${result.signal ?? result.error.code})\n${indent(output)}`,
      );
    } else if (result.error) {
      problems.push(`${where}: could not run the block: ${result.error.message}`);
    } else if (result.status !== 0) {
      problems.push(`${where}: the block exited with ${result.status}\n${indent(output)}`);
    } else if (verbose) {
      console.log(`${where}: ran in ${Math.round(performance.now() - begun)} ms\n${indent(output)}`);
    }
  }
  return runnable.length;
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function indent(text) {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

/**
 * A `--require` hook for the runs: TypeScript files (the block and lib/) are compiled to CommonJS
 * as they load, by SWC as in the project's Vitest (a tenth of TypeScript's time; TypeScript's own
 * transpiler when SWC is missing), and the package's entries resolve to lib/.
 */
function registerSource() {
  return `'use strict';
const fs = require('node:fs');
const Module = require('node:module');
const entries = ${JSON.stringify(entries())};
let compile;
try {
  const swc = require(${JSON.stringify(path.join(ROOT, 'node_modules/@swc/core'))});
  const options = {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      target: 'es2022',
      keepClassNames: true,
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  };
  compile = (source, filename) => swc.transformSync(source, { ...options, filename }).code;
} catch {
  const ts = require(${JSON.stringify(path.join(ROOT, 'node_modules/typescript'))});
  const compilerOptions = {
    module: ts.ModuleKind.CommonJS,
    target: ts.ScriptTarget.ES2022,
    esModuleInterop: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    useDefineForClassFields: false,
    inlineSourceMap: true,
  };
  compile = (source, fileName) => ts.transpileModule(source, { compilerOptions, fileName }).outputText;
}
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return Object.prototype.hasOwnProperty.call(entries, request) ? entries[request] : resolveFilename.call(this, request, ...rest);
};
require.extensions['.ts'] = (module, filename) => module._compile(compile(fs.readFileSync(filename, 'utf8'), filename), filename);
`;
}
