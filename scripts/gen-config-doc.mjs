#!/usr/bin/env node
// Rewrites the generated table in docs/config.md from the compiled schema (run after a build).
import { readFileSync, writeFileSync } from 'node:fs';
import { configDoc } from '../dist/src/config/config.js';

const path = new URL('../docs/config.md', import.meta.url);
const text = readFileSync(path, 'utf8');
const start = '<!-- generated: ecs-console config-doc -->\n';
const end = '<!-- end generated -->';
const a = text.indexOf(start);
const b = text.indexOf(end);
if (a === -1 || b === -1) throw new Error('docs/config.md lacks the generated-table markers');
writeFileSync(path, text.slice(0, a + start.length) + configDoc() + '\n' + text.slice(b));
