/**
 * `node dist/bench/profile-summary.js FILE.cpuprofile|FILE.heapprofile [top]`: where a CPU
 * profile's time went, or what an allocation profile allocated.
 * CPU: time by area (our src/ folders, each dependency, Node internals, GC, idle), then the
 * functions with the most self time and the most inclusive time (each function counted once per
 * sample however deep it recurses), in ms of wall-clock sampling.
 * Allocations: bytes by area, by allocating function, and by allocating stack (innermost frames).
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

/** A headline, then per section a table of its `n` largest entries: name, amount, share of `total`. */
function report(headline: string, units: [string, string], total: number, amount: (v: number) => string,
  sections: Array<[string, Map<string, number>, number]>): string {
  const out = [headline];
  for (const [title, m, n] of sections) {
    const rows = [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => [k, amount(v), `${fmt((v / total) * 100, 1)}%`]);
    out.push('', table([title, ...units], rows));
  }
  return out.join('\n');
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
  return report(`${fmt(total, 0)} ms sampled, ${fmt(busy, 0)} ms busy (not idle); percentages of busy time`, ['ms', '% busy'], busy, (v) => fmt(v, 1), [
    ['area (self time)', areas, 30], ['function (self time)', self, top], ['function (inclusive time)', incl, top],
  ]);
}

interface AllocNode {
  callFrame: ProfileNode['callFrame'];
  selfSize: number;
  children: AllocNode[];
}

/** Bytes allocated by area, by function, and by stack (innermost three frames). */
export function summarizeAllocations(head: AllocNode, top = 25): string {
  const byArea = new Map<string, number>();
  const byFn = new Map<string, number>();
  const byStack = new Map<string, number>();
  let total = 0;
  const walk = (n: AllocNode, stack: string[]): void => {
    const l = label({ id: 0, callFrame: n.callFrame });
    const here = [...stack, l];
    if (n.selfSize > 0) {
      total += n.selfSize;
      const a = area(n.callFrame.url, n.callFrame.functionName);
      byArea.set(a, (byArea.get(a) ?? 0) + n.selfSize);
      byFn.set(l, (byFn.get(l) ?? 0) + n.selfSize);
      const k = here.slice(-3).reverse().join(' < ');
      byStack.set(k, (byStack.get(k) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, here);
  };
  walk(head, []);
  return report(`${fmt(total / 1024, 0)} KiB allocated (sampled)`, ['KiB', '%'], total, (v) => fmt(v / 1024, 0), [
    ['area', byArea, 20], ['allocating function', byFn, top], ['allocating stack (innermost first)', byStack, top],
  ]);
}

if (process.argv[1]?.endsWith('profile-summary.js')) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/profile-summary.js FILE.cpuprofile|FILE.heapprofile [top]\n');
    process.exit(2);
  }
  const json = JSON.parse(readFileSync(file, 'utf8')) as Profile & { head?: AllocNode };
  const top = Number(process.argv[3] ?? 25);
  process.stdout.write((json.head ? summarizeAllocations(json.head, top) : summarize(json, top)) + '\n');
}
