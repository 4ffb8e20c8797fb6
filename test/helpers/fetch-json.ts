/** Plain `fetch` calls as any HTTP client makes them (no signing, no SDK): an IAM token by password, and JSON calls with it. */
import assert from 'node:assert/strict';

/** A request body sent as it is (not JSON-encoded). */
export class RawBody {
  constructor(readonly text: string) {}
}

export interface FetchReply {
  status: number;
  json: any;
  text: string;
  type: string | null;
  headers: Headers;
}

/** `POST /v3/auth/tokens` by password, scoped to `projectId`; the X-Subject-Token. */
export async function iamTokenByPassword(apiUrl: string, domain: string, name: string, password: string, projectId: string): Promise<string> {
  const r = await fetch(`${apiUrl}/v3/auth/tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name, password, domain: { name: domain } } } }, scope: { project: { id: projectId } } } }),
  });
  assert.equal(r.status, 201, await r.text());
  return r.headers.get('x-subject-token')!;
}

/**
 * A call with an IAM token (none when empty) and a JSON body when given (a `RawBody` goes as it
 * is, for malformed JSON); redirects are answered, not followed. The answer's text, and its JSON
 * when it is JSON.
 */
export async function fetchJson(apiUrl: string, token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<FetchReply> {
  const r = await fetch(`${apiUrl}${path}`, {
    method, redirect: 'manual', headers: { ...(token ? { 'x-auth-token': token } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: body instanceof RawBody ? body.text : JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, text, type: r.headers.get('content-type'), headers: r.headers };
}
