/** IAM action patterns: `*` matches any run of characters (`ecs:*`, `ecs:cloudServers:*`, `*`). */

const ACTION_RE = /^(\*|[A-Za-z0-9*]+(:[A-Za-z0-9*]+){0,2})$/;

export function isValidActionPattern(p: string): boolean {
  return p.length <= 128 && ACTION_RE.test(p);
}

export function actionMatches(pattern: string, action: string): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*')) return pattern === action;
  const re = new RegExp('^' + pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(action);
}

/** True when every set has a pattern matching `action`. */
export function allowedByAll(sets: ReadonlyArray<readonly string[]>, action: string): boolean {
  return sets.every((set) => set.some((p) => actionMatches(p, action)));
}
