/**
 * remote_console calls as the official SDKs make them: `SDK-HMAC-SHA256` signed with a fresh
 * X-Sdk-Date on every request, over keep-alive connections.
 */
import { Agent, request } from 'node:http';
import { signRequest } from '../../src/identity/sdk-hmac-signer.js';
import { pool } from './rfb-session.js';

export const REMOTE_CONSOLE_BODY = JSON.stringify({ remote_console: { type: 'novnc', protocol: 'vnc' } });

export function remoteConsolePath(projectId: string, serverId: string): string {
  return `/v1/${projectId}/cloudservers/${serverId}/remote_console`;
}

export interface Credentials {
  ak: string;
  sk: string;
}

export interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One POST with `headers` (plus a signature when `creds` is given), from `localAddress` when given. */
export function post(agent: Agent, port: number, path: string, body: string, creds: Credentials | null, headers: Record<string, string> = {}, localAddress?: string): Promise<Reply> {
  let h: Record<string, string> = { 'content-type': 'application/json', ...headers };
  if (creds) h = signRequest({ method: 'POST', url: new URL(`http://127.0.0.1:${port}${path}`), headers: h, body }, creds.ak, creds.sk, Date.now());
  h['content-length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: '127.0.0.1', port, method: 'POST', path, headers: h, ...(localAddress ? { localAddress } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Issues `n` console tokens through the API (AK/SK signed remote_console calls), spread over
 * `servers`; returns the tokens taken from the returned URLs.
 */
export async function issueTokens(apiPort: number, projectId: string, servers: readonly string[], creds: Credentials, n: number, body = REMOTE_CONSOLE_BODY): Promise<string[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  try {
    const got = await pool(n, 16, async (i) => {
      const r = await post(agent, apiPort, remoteConsolePath(projectId, servers[i % servers.length]!), body, creds);
      if (r.status !== 200) throw new Error(`remote_console answered ${r.status}: ${r.body.slice(0, 200)}`);
      const url = (JSON.parse(r.body) as { remote_console: { url: string } }).remote_console.url;
      return new URL(url).searchParams.get('token') ?? '';
    });
    const failed = got.find((g): g is Error => g instanceof Error);
    if (failed) throw failed;
    return got as string[];
  } finally {
    agent.destroy();
  }
}

/** The body of a password login (POST /v3/auth/tokens, project scope). */
export function loginBody(domain: string, user: string, password: string, projectId: string): string {
  return JSON.stringify({
    auth: {
      identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: domain } } } },
      scope: { project: { id: projectId } },
    },
  });
}

/** An IAM token for the user (POST /v3/auth/tokens, password method, project scope). */
export async function iamToken(apiPort: number, domain: string, user: string, password: string, projectId: string): Promise<string> {
  const body = loginBody(domain, user, password, projectId);
  const agent = new Agent({ keepAlive: false });
  const r = await post(agent, apiPort, '/v3/auth/tokens', body, null);
  agent.destroy();
  const t = r.headers['x-subject-token'];
  if (r.status !== 201 && r.status !== 200) throw new Error(`POST /v3/auth/tokens answered ${r.status}`);
  if (typeof t !== 'string') throw new Error('no X-Subject-Token in the answer');
  return t;
}
