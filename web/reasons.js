// Why a console session did not start or ended: stable reason keys (exposed as body[data-reason]
// for tests and support), derived from the pre-check answer or the WebSocket close code.
// Pure functions, no DOM: the unit tests import this file in Node.

/** Pre-check states that refuse the token, and their reason keys. */
export const PRECHECK_REASONS = Object.freeze({
  expired: 'token-expired',
  used: 'token-used',
  unknown: 'token-unknown',
  'server-not-active': 'server-not-active',
  throttled: 'throttled',
});

/**
 * Why a link was revoked (`server-not-active` with a `reason`), and the page's reason keys. A
 * reason this page does not know (added by a later proxy) is shown as a revoked link; no reason
 * at all (an older proxy) as a server that is not running.
 */
export const REVOKED_REASONS = Object.freeze({
  'server-stopped': 'server-not-active',
  'server-deleted': 'server-deleted',
  'console-changed': 'console-moved',
  'credential-revoked': 'credential-revoked',
});

/** The proxy's WebSocket close codes (its contract with this page), and their reason keys. */
export const CLOSE_REASONS = Object.freeze({
  1000: 'closed',
  4100: 'backend-unreachable',
  4101: 'backend-auth-failed',
  4102: 'backend-protocol-error',
  4103: 'serial-port-busy',
  4200: 'server-unavailable',
  4201: 'operator-ended',
  4202: 'idle-timeout',
  4203: 'max-duration',
  4204: 'proxy-shutdown',
  4205: 'backend-closed',
  4210: 'credential-revoked',
  4400: 'bad-client-data',
  4402: 'too-slow',
});

/** What the proxy's close text says before an operator's reason (proxy-server.ts, `session-kill`). */
export const OPERATOR_END_TEXT = 'An operator ended this console session.';

/**
 * The reason an operator gave when ending the session, from the close frame's text (the proxy's
 * own sentence removed), or null when none was given.
 *
 * @param {unknown} closeText
 * @returns {string | null}
 */
export function operatorReason(closeText) {
  if (typeof closeText !== 'string') return null;
  const text = (closeText.startsWith(OPERATOR_END_TEXT) ? closeText.slice(OPERATOR_END_TEXT.length) : closeText).trim();
  return text === '' ? null : text.slice(0, 200);
}

/** Longest server name shown; the proxy caps names at 1 KiB, the page shows less. */
export const MAX_NAME_CHARS = 256;

/**
 * What to do after the pre-check (`POST /api/console/info`).
 * A definite refusal stops here: the WebSocket would be refused too, and the page says why.
 * Anything not understood (network error, 5xx, an older proxy without the endpoint) lets the
 * page try the WebSocket, which is the real check; it reports "could not connect" if refused.
 *
 * @param {number | null} status HTTP status, or null when the request failed
 * @param {unknown} body parsed JSON body, or null
 * @returns {{ proceed: true, name: string | null } | { proceed: false, reason: string }}
 */
export function precheckOutcome(status, body) {
  if (status === 429) return { proceed: false, reason: PRECHECK_REASONS.throttled };
  const state = body !== null && typeof body === 'object' ? body.state : undefined;
  if (status === 200 && state === 'valid') {
    const server = body.server;
    const raw = server !== null && typeof server === 'object' && typeof server.name === 'string' ? server.name : null;
    return { proceed: true, name: raw === null || raw === '' ? null : raw.slice(0, MAX_NAME_CHARS) };
  }
  if (status === 200 && state === 'server-not-active' && typeof body.reason === 'string') {
    const why = body.reason;
    return { proceed: false, reason: Object.hasOwn(REVOKED_REASONS, why) ? REVOKED_REASONS[why] : 'link-revoked' };
  }
  if (status === 200 && typeof state === 'string' && Object.hasOwn(PRECHECK_REASONS, state)) {
    return { proceed: false, reason: PRECHECK_REASONS[state] };
  }
  return { proceed: true, name: null };
}

/** How long a page waits for the pre-check before trying the WebSocket anyway. */
export const PRECHECK_TIMEOUT_MS = 10_000;

/**
 * Asks the proxy whether a token is usable, without consuming it (`POST /api/console/info`), and
 * gives the outcome (see precheckOutcome). Shared by the VNC and the serial page; `fetchImpl` lets
 * the unit tests run it in Node.
 *
 * @param {string} token
 * @param {{ fetchImpl?: typeof fetch, timeoutMs?: number }} [options]
 * @returns {Promise<{ proceed: true, name: string | null } | { proceed: false, reason: string }>}
 */
export async function precheck(token, { fetchImpl = fetch, timeoutMs = PRECHECK_TIMEOUT_MS } = {}) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetchImpl('/api/console/info', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }),
      cache: 'no-store',
      credentials: 'same-origin',
      signal: abort.signal,
    });
    let body = null;
    try {
      body = await res.json();
    } catch {
      // not JSON: the outcome treats it as "not understood"
    }
    return precheckOutcome(res.status, body);
  } catch {
    return precheckOutcome(null, null);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The page's final state and reason once the WebSocket has closed (or noVNC gave up on it).
 * A session that never reached "connected" failed; one that did was disconnected.
 *
 * @param {{ code: number | null, wasConnected: boolean, securityFailure: boolean }} event
 * @returns {{ state: 'failed' | 'disconnected', reason: string }}
 */
export function closeOutcome({ code, wasConnected, securityFailure }) {
  const state = wasConnected ? 'disconnected' : 'failed';
  const known = code !== null && Object.hasOwn(CLOSE_REASONS, code) ? CLOSE_REASONS[code] : undefined;
  if (known !== undefined && !(code === 1000 && !wasConnected)) return { state, reason: known };
  // A security failure without one of our codes came from a proxy that closed some other way.
  if (securityFailure) return { state, reason: 'security-failure' };
  return { state, reason: wasConnected ? 'connection-lost' : 'connect-failed' };
}

/** Reasons after which trying again with the same token can work (it was not consumed). */
const RETRYABLE = new Set(['throttled', 'connect-failed']);

/** True when a manual "Try again" (pre-check first, then connect) makes sense for this reason. */
export function canRetry(reason) {
  return RETRYABLE.has(reason);
}

/** The i18n key of the advice shown under a reason. */
export function adviceKey(reason) {
  switch (reason) {
    case 'server-not-active':
    case 'server-unavailable':
      return 'advice.start-server';
    case 'server-deleted':
      return 'advice.deleted';
    case 'throttled':
      return 'advice.wait';
    case 'connect-failed':
      return 'advice.network';
    case 'proxy-shutdown':
      return 'advice.later';
    // The console service cannot reach or log in to the server's console: a new URL fails the
    // same way until an operator fixes the server's console settings.
    case 'backend-unreachable':
    case 'backend-auth-failed':
    case 'backend-protocol-error':
    case 'serial-port-busy':
      return 'advice.operator';
    default:
      return 'advice.new-url';
  }
}
