#!/usr/bin/env node
// Builds dist/ from the TypeScript sources: `npm ci` in a checkout (postprepare), `npm pack`
// (prepack, so the package holds what was just compiled) and `npm run build`.
//
// Why `postprepare` and `prepack` rather than `prepare`: npm lists a package's own `prepare` among
// the install scripts it warns about when the package is installed from its tarball (where it never
// runs); these two run in the same places for a checkout and are not install scripts.
//
// A production install comes from the package (`npm pack`, then `npm install -g
// ./ecs-console-<version>.tgz --omit=dev`), which holds dist/ already. A checkout installed with
// --omit=dev has no compiler: say so in plain words instead of failing on a missing `tsc`.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const main = join(root, 'dist', 'src', 'main.js');

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  if (existsSync(main)) {
    process.stderr.write('ecs-console: TypeScript is not installed (--omit=dev): keeping the dist/ already built.\n');
    process.exit(0);
  }
  process.stderr.write([
    'ecs-console: cannot build dist/ here: TypeScript is a development dependency and was not installed (--omit=dev).',
    '  For production, install the package: npm pack, then npm install -g ./ecs-console-<version>.tgz --omit=dev',
    '  (README.md, docs/deploy.md). To work from this checkout: npm ci (without --omit=dev).',
    '',
  ].join('\n'));
  process.exit(1);
}

const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
chmodSync(main, 0o755);

// The package takes dist/src as it is: drop what a deleted or renamed source left behind.
function prune(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      prune(p);
      if (readdirSync(p).length === 0) rmSync(p, { recursive: true });
      continue;
    }
    const source = join(root, relative(join(root, 'dist'), p)).replace(/\.js(\.map)?$/, '.ts');
    if (!existsSync(source)) rmSync(p);
  }
}
prune(join(root, 'dist', 'src'));
