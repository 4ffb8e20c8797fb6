#!/usr/bin/env node
// Runs the compiled tests of one suite (`unit` or `system`) with node:test.
// Node 20's `--test` takes file paths, not globs, so the files are collected here.
// Extra arguments are passed to node (e.g. `--test-name-pattern=...`) or, when they
// end in .test.ts/.test.js, select files.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';

const suite = process.argv[2];
if (suite !== 'unit' && suite !== 'system') {
  console.error('usage: run-tests.mjs unit|system [node flags] [file filters]');
  process.exit(2);
}
const rest = process.argv.slice(3);
const filters = rest.filter((a) => !a.startsWith('-')).map((a) => a.replace(/\.ts$/, '').replace(/\.js$/, ''));
const flags = rest.filter((a) => a.startsWith('-'));
const root = join('dist', 'test', suite);

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    // Only compiled tests whose source still exists (a deleted test leaves its .js in dist/).
    else if (name.endsWith('.test.js') && existsSync(p.replace(/^dist[\\/]/, '').replace(/\.js$/, '.ts'))) out.push(p);
  }
  return out;
}

let files = collect(root);
if (filters.length > 0) files = files.filter((f) => filters.some((flt) => f.includes(flt.replace(/^test\//, ''))));
if (files.length === 0) {
  console.error(`no test files in ${root}${filters.length ? ' matching ' + filters.join(', ') : ''}`);
  process.exit(1);
}
const concurrency = suite === 'system' ? '1' : '2';
const child = spawn(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...flags, ...files],
  { stdio: 'inherit', env: { ...process.env, ECS_CONSOLE_TEST_SUITE: suite } },
);
child.on('exit', (code, signal) => {
  if (signal) console.error(`tests killed by ${signal}: ${files.map((f) => relative('.', f)).join(' ')}`);
  process.exit(code ?? 1);
});
