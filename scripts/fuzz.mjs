#!/usr/bin/env node
// The long fuzz run: the same targets as the bounded run in `npm test` (test/unit/fuzz/), each for
// its share of FUZZ_SECONDS (default 600), one file after another, then a summary per target.
// Usage: npm run fuzz [-- <file filter>...]   e.g. npm run fuzz -- proxy-backend
// Environment: FUZZ_SECONDS (total budget), FUZZ_SEED/FUZZ_PATH (replay), FUZZ_SAVE=0 (do not
// write failing inputs into test/fuzz/corpus/), FUZZ_SHRINK_SECONDS (default 60).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = join('dist', 'test', 'unit', 'fuzz');
if (!existsSync(dir)) {
  console.error(`${dir} is missing: build first (npm run fuzz does)`);
  process.exit(2);
}
const filters = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.js') && existsSync(join('test', 'unit', 'fuzz', f.replace(/\.js$/, '.ts'))))
  .filter((f) => filters.length === 0 || filters.some((flt) => f.includes(flt)))
  .sort()
  .map((f) => join(dir, f));
if (files.length === 0) {
  console.error(`no fuzz test files match ${filters.join(', ')}`);
  process.exit(1);
}

const seconds = Number(process.env.FUZZ_SECONDS ?? 600);
const work = mkdtempSync(join(tmpdir(), 'ecs-console-fuzz-'));
const reportFile = join(work, 'report.jsonl');
console.log(`long fuzz run: ${seconds} s shared among the targets of ${files.length} files`);
const started = Date.now();
const child = spawn(
  process.execPath,
  ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: { ...process.env, FUZZ_MODE: 'long', FUZZ_SECONDS: String(seconds), FUZZ_REPORT: reportFile, ECS_CONSOLE_TEST_SUITE: 'unit' } },
);
child.on('exit', (code, signal) => {
  const rows = existsSync(reportFile) ? readFileSync(reportFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  rmSync(work, { recursive: true, force: true });
  console.log(`\nlong fuzz run summary (${Math.round((Date.now() - started) / 1000)} s wall)`);
  console.log('target                   cases      seconds  result   outcomes');
  for (const r of rows) {
    const outcomes = Object.entries(r.outcomes).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ×${n}`).join('; ');
    console.log(`${r.target.padEnd(24)} ${String(r.cases).padStart(8)} ${String(Math.round(r.ms / 1000)).padStart(9)}  ${(r.failed ? 'FAILED' : 'ok').padEnd(8)} ${outcomes}`);
    if (r.notes) console.log(`  ${Object.entries(r.notes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    if (r.failed) console.log(`  ${r.error.split('\n').slice(0, 3).join('\n  ')}`);
  }
  if (signal) console.error(`fuzz run killed by ${signal}`);
  process.exit(code ?? 1);
});
