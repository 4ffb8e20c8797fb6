/** An HTTP client that signs like the official SDKs, with knobs for Python/Go-style bodies. */
import { request } from 'node:http';
import { signRequest } from '../../src/identity/sdk-hmac-signer.js';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
  /** The body's bytes (images). */
  body: Buffer;
}

export interface SendOptions {
  /** The client socket's own address (e.g. 127.0.0.2: another source address on loopback). */
  localAddress?: string;
}

/** Raw HTTP request (no signing). Body sent as given. */
export function http(method: string, url: string, headers: Record<string, string> = {}, body: string | Buffer = '', opts: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({
      method, host: u.hostname, port: u.port, path: u.pathname + u.search, headers: { ...headers, ...(body.length ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
      ...(opts.localAddress ? { localAddress: opts.localAddress, agent: false } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        let json: unknown = undefined;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, body: raw });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface SignOptions extends SendOptions {
  ak: string;
  sk: string;
  projectId?: string;
  /** Sign at this time (ms); default now. */
  at?: number;
  extraHeaders?: Record<string, string>;
}

/** Signs the request as the Node SDK does (all headers signed) and sends it. */
export function signedHttp(method: string, url: string, body: string, o: SignOptions): Promise<Reply> {
  const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {};
  if (o.projectId) headers['x-project-id'] = o.projectId;
  for (const [k, v] of Object.entries(o.extraHeaders ?? {})) headers[k.toLowerCase()] = v;
  const signed = signRequest({ method, url: new URL(url), headers, body }, o.ak, o.sk, o.at ?? Date.now());
  return http(method, url, signed, body, o.localAddress ? { localAddress: o.localAddress } : {});
}
