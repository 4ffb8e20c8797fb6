/**
 * The client's VeNCrypt (security type 19) in clientHandshake, at every split point of the
 * server's bytes: the version 0.2 exchange, the subtype choice, TLS started through the caller's
 * startTls (here a stand-in that keeps the same byte stream, so the steps inside TLS are scripted
 * too), VNC Authentication inside TLS for X509Vnc, and the refusals: no downgrade to plain VNC
 * when TLS is required, no TLS when it is not configured, subtypes without certificates.
 * Real TLS with QEMU: test/system/qemu-qmp.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendError } from '../../../src/errors.js';
import {
  ByteReader, RGB888_PIXEL_FORMAT, SecurityType, VeNCryptSubtype, clientHandshake, encodeServerInit, vncAuthResponse, type ClientHandshakeOptions,
} from '../../../src/rfb/index.js';
import { chunkings } from '../../helpers/rfb-split.js';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const VERSION = Buffer.from('RFB 003.008\n');
const CHALLENGE = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const SERVER_INIT = encodeServerInit({ width: 640, height: 480, pixelFormat: RGB888_PIXEL_FORMAT, name: 'vm' });
/** Server: types [19], VeNCrypt 0.2, ack, subtypes, accept. */
const vencrypt = (subtypes: number[]): Buffer => Buffer.concat([Buffer.from([1, 19]), Buffer.from([0, 2]), Buffer.from([0]), Buffer.from([subtypes.length]), ...subtypes.map(u32), Buffer.from([1])]);

interface Run {
  result: Promise<unknown>;
  written: () => Buffer;
  tlsStarted: () => boolean;
}

/** Feeds `before` (up to the server's acceptance) and, once TLS "started", `inside`, in the given chunks. */
async function run(before: Buffer[], inside: Buffer[], opts: ClientHandshakeOptions): Promise<Run> {
  const reader = new ByteReader();
  const out: Buffer[] = [];
  let started = false;
  const inner = new ByteReader();
  const result = clientHandshake(reader, (b) => out.push(b), {
    ...opts,
    ...(opts.tls ? {
      tls: {
        startTls: async () => {
          started = true;
          for (const c of inside) inner.push(c);
          inner.end();
          return { reader: inner, write: (b: Buffer) => out.push(Buffer.concat([Buffer.from('TLS:'), b])) };
        },
      },
    } : {}),
  });
  result.catch(() => undefined);
  for (const c of before) {
    reader.push(c);
    await new Promise((r) => setImmediate(r));
  }
  reader.end();
  return { result, written: () => Buffer.concat(out), tlsStarted: () => started };
}

const withTls = { tls: { startTls: () => Promise.reject(new Error('replaced in run()')) } };

test('VeNCrypt X509None: version 0.2, subtype 260, TLS, SecurityResult and ServerInit inside TLS, at every split point', async () => {
  const before = Buffer.concat([VERSION, vencrypt([VeNCryptSubtype.X509None, VeNCryptSubtype.X509Vnc])]);
  for (const { label, chunks } of chunkings(before)) {
    const r = await run(chunks, [u32(0), SERVER_INIT], withTls);
    const res = (await r.result) as { securityType: number; vencryptSubtype: number; serverInit: { width: number } };
    assert.equal(res.securityType, SecurityType.VeNCrypt, label);
    assert.equal(res.vencryptSubtype, VeNCryptSubtype.X509None, label);
    assert.equal(res.serverInit.width, 640, label);
    // Our bytes: version, type 19, VeNCrypt 0.2, subtype 260; then ClientInit through TLS.
    assert.equal(r.written().toString('hex'), Buffer.concat([VERSION, Buffer.from([19, 0, 2]), u32(260), Buffer.from('TLS:'), Buffer.from([1])]).toString('hex'), label);
  }
});

test('VeNCrypt X509Vnc: the VNC challenge is answered inside TLS with the password', async () => {
  const before = Buffer.concat([VERSION, vencrypt([VeNCryptSubtype.X509Vnc])]);
  for (const { label, chunks } of chunkings(before)) {
    const r = await run(chunks, [CHALLENGE, u32(0), SERVER_INIT], { ...withTls, password: 'one-time' });
    const res = (await r.result) as { vencryptSubtype: number };
    assert.equal(res.vencryptSubtype, VeNCryptSubtype.X509Vnc, label);
    const response = vncAuthResponse('one-time', CHALLENGE);
    assert.ok(r.written().includes(Buffer.concat([Buffer.from('TLS:'), response])), `${label}: the response goes through TLS`);
    assert.ok(!r.written().subarray(0, r.written().indexOf('TLS:')).includes(response), `${label}: never in clear`);
  }
});

test('VeNCrypt X509Vnc: a rejected password is failure "password"', async () => {
  const reason = Buffer.from('Authentication failed');
  const r = await run([Buffer.concat([VERSION, vencrypt([VeNCryptSubtype.X509Vnc])])], [CHALLENGE, u32(1), u32(reason.length), reason], { ...withTls, password: 'x' });
  await assert.rejects(r.result, (e: unknown) => e instanceof BackendError && e.failure === 'password' && /rejected the VNC password: Authentication failed/.test(e.message));
});

async function refused(before: Buffer, opts: ClientHandshakeOptions, failure: string, message: RegExp, tlsStarted = false): Promise<void> {
  const r = await run([before], [], opts);
  await assert.rejects(r.result, (e: unknown) => e instanceof BackendError && e.code === 'BACKEND_AUTH_FAILED' && e.failure === failure && message.test(e.message));
  assert.equal(r.tlsStarted(), tlsStarted);
}

test('no downgrade: a target that requires TLS refuses a server offering plain None and VNC authentication', async () => {
  await refused(Buffer.concat([VERSION, Buffer.from([2, 1, 2])]), { ...withTls, password: 'x' }, 'tls', /does not offer TLS \(VeNCrypt\) and this target requires it: plain VNC refused \(offered: None\(1\), VncAuthentication\(2\)\)/);
  // RFB 3.3: the server picks; None is refused all the same.
  await refused(Buffer.concat([Buffer.from('RFB 003.003\n'), u32(1)]), withTls, 'tls', /plain VNC refused/);
});

test('a server that requires TLS, for a target without it, is refused with that reason', async () => {
  await refused(Buffer.concat([VERSION, Buffer.from([1, 19])]), { password: 'x' }, 'tls', /requires TLS \(VeNCrypt\) but this target is not set to use TLS/);
});

test('VeNCrypt refusals: other versions, the server\'s nack, anonymous-TLS or Plain subtypes only, X509Vnc without a password, a refused subtype', async () => {
  const head = Buffer.concat([VERSION, Buffer.from([1, 19])]);
  await refused(Buffer.concat([head, Buffer.from([0, 1])]), withTls, 'tls', /speaks VeNCrypt 0\.1; only 0\.2/);
  await refused(Buffer.concat([head, Buffer.from([0, 2, 1])]), withTls, 'tls', /refused VeNCrypt version 0\.2/);
  await refused(Buffer.concat([head, Buffer.from([0, 2, 0, 0])]), withTls, 'tls', /offers no VeNCrypt subtype/);
  await refused(Buffer.concat([head, Buffer.from([0, 2, 0, 3]), u32(257), u32(258), u32(256)]), withTls, 'tls',
    /no VeNCrypt subtype with certificates we support \(offered: TLSNone\(257\), TLSVnc\(258\), Plain\(256\)/);
  await refused(Buffer.concat([head, Buffer.from([0, 2, 0, 1]), u32(261)]), withTls, 'security', /requires VNC authentication inside TLS but no password/);
  await refused(Buffer.concat([head, Buffer.from([0, 2, 0, 1]), u32(260), Buffer.from([0])]), withTls, 'tls', /refused the VeNCrypt subtype X509None\(260\)/);
});

test('bytes before the TLS handshake are a protocol error, not TLS', async () => {
  const r = await run([Buffer.concat([VERSION, vencrypt([260]), Buffer.from([0x16, 3, 1])])], [], withTls);
  await assert.rejects(r.result, (e: unknown) => e instanceof BackendError && e.code === 'BACKEND_PROTOCOL' && /data before the TLS handshake/.test(e.message));
  assert.equal(r.tlsStarted(), false);
});
