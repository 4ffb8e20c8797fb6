/**
 * `node dist/bench/profile-summary.js FILE.cpuprofile [top]`: where a CPU profile's time went.
 * Prints time by area (our src/ folders, each dependency, Node internals, GC, idle), then the
 * functions with the most self time and the most inclusive time (each function counted once per
 * sample however deep it recurses). Times in ms of wall-clock sampling.
 */
import { readFileSync } from 'node:fs';
import { fmt, table } from './lib/stats.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The area a frame belongs to: a src/ folder, a package, Node itself, or a pseudo-frame. */
export function area(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const src = /\/(src|bench|test)\/([^/]+)\//.exec(url);
  if (src && !url.includes('node_modules')) return `${src[1]}/${src[2]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[1] ?? url.slice(5)}`;
  return url;
}

function label(n: ProfileNode): string {
  const f = n.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
}

export function summarize(p: Profile, top = 25): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const n = byId.get(id)!;
    self.set(label(n), (self.get(label(n)) ?? 0) + dt);
    const a = area(n.callFrame.url, n.callFrame.functionName);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (seen.has(l)) continue;
      seen.add(l);
      incl.set(l, (incl.get(l) ?? 0) + dt);
    }
  });
  const busy = total - (areas.get('(idle)') ?? 0);
  const rows = (m: Map<string, number>, n: number): string[][] =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => [k, fmt(v, 1), `${fmt((v / busy) * 100, 1)}%`]);
  return [
    `${fmt(total, 0)} ms sampled, ${fmt(busy, 0)} ms busy (not idle); percentages of busy time`,
    '',
    table(['area (self time)', 'ms', '% busy'], rows(areas, 30)),
    '',
    table(['function (self time)', 'ms', '% busy'], rows(self, top)),
    '',
    table(['function (inclusive time)', 'ms', '% busy'], rows(incl, top)),
  ].join('\n');
}

if (process.argv[1]?.endsWith('profile-summary.js')) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/profile-summary.js FILE.cpuprofile [top]\n');
    process.exit(2);
  }
  process.stdout.write(summarize(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(process.argv[3] ?? 25)) + '\n');
}
