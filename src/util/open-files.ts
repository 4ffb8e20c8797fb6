/**
 * File descriptors: what a node needs at its configured caps, and the limit it runs under. A
 * node that reaches its open-file limit first refuses connections with EMFILE, far below the caps
 * it was given; `serve` warns at start instead (deploy/ecs-console.service sizes LimitNOFILE).
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.js';

/** Descriptors for the store, listeners, logs and the rest of the process. */
const BASE = 256;

/**
 * Open files a node of `role` needs at its caps: per console a browser socket and a VNC server
 * socket (`proxyMaxSessions`), the 1,000 further browser connections the proxy accepts (page
 * loads, pre-checks), the API's `apiMaxConnections`, and a base.
 */
export function openFilesNeeded(config: Pick<Config, 'proxyMaxSessions' | 'apiMaxConnections'>, role: 'serve' | 'api' | 'proxy'): number {
  const proxy = role === 'api' ? 0 : 2 * config.proxyMaxSessions + 1000;
  const api = role === 'proxy' ? 0 : config.apiMaxConnections;
  return proxy + api + BASE;
}

/** The soft limit on open files from `/proc/<pid>/limits` text; null when it cannot be read or is unlimited. */
export function parseOpenFilesLimit(limits: string): number | null {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
  return m && m[1] !== 'unlimited' ? Number(m[1]) : null;
}

/** This process's soft limit on open files (Linux); null elsewhere. */
export function openFilesLimit(): number | null {
  try {
    return parseOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return null;
  }
}
