import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { AuthError, BackendError, ProtocolError } from '../../../src/errors.js';
import { ByteReader } from '../../../src/rfb/byte-reader.js';
import { clientHandshake, type ClientHandshakeOptions } from '../../../src/rfb/client-handshake.js';
import { SecurityType } from '../../../src/rfb/constants.js';
import { encodeServerInit, type RfbVersion } from '../../../src/rfb/handshake-messages.js';
import { RGB888_PIXEL_FORMAT } from '../../../src/rfb/pixel-format.js';
import { encodeBell } from '../../../src/rfb/server-messages.js';
import {
  serverHandshake,
  serverNegotiateVersion,
  serverRefuseSecurity,
  type ServerHandshakeOptions,
} from '../../../src/rfb/server-handshake.js';
import { vncAuthResponse } from '../../../src/rfb/vnc-auth.js';
import { chunkings, tick } from '../../helpers/rfb-split.js';

const serverInit = { width: 640, height: 480, pixelFormat: RGB888_PIXEL_FORMAT, name: 'ecs-test-01' };

/** Client and server handshakes joined in memory; the server sends ServerInit and a Bell after. */
async function inMemory(clientOpts: ClientHandshakeOptions, serverOpts: ServerHandshakeOptions) {
  const toServer = new ByteReader();
  const toClient = new ByteReader();
  const server = serverHandshake(toServer, (b) => toClient.push(b), serverOpts).then((r) => {
    toClient.push(Buffer.concat([encodeServerInit(serverInit), encodeBell()]));
    return r;
  });
  const client = clientHandshake(toClient, (b) => toServer.push(b), clientOpts);
  // A side that fails closes its end, as a socket would.
  client.catch(() => toServer.end());
  server.catch(() => toClient.end());
  const [c, s] = await Promise.allSettled([client, server]);
  return { c, s, leftover: () => toClient.takeRemainder() };
}

for (const maxVersion of ['3.3', '3.7', '3.8'] as const) {
  test(`in memory, RFB ${maxVersion} client: None, VNC auth, wrong password`, async () => {
    const none = await inMemory({ maxVersion }, { securityTypes: [SecurityType.None] });
    assert.equal(none.c.status, 'fulfilled');
    assert.equal(none.s.status, 'fulfilled');
    if (none.c.status === 'fulfilled' && none.s.status === 'fulfilled') {
      assert.equal(none.c.value.version, maxVersion);
      assert.equal(none.c.value.securityType, SecurityType.None);
      assert.deepEqual(none.c.value.serverInit, { ...serverInit, pixelFormat: { ...RGB888_PIXEL_FORMAT } });
      assert.deepEqual(none.s.value, { version: maxVersion, securityType: SecurityType.None, shared: true });
      assert.deepEqual(none.leftover(), encodeBell());
    }

    const auth = await inMemory({ maxVersion, password: 'sesame' }, { securityTypes: [SecurityType.VncAuthentication], password: 'sesame' });
    assert.equal(auth.c.status, 'fulfilled');
    if (auth.c.status === 'fulfilled') {
      assert.equal(auth.c.value.securityType, SecurityType.VncAuthentication);
      assert.deepEqual(auth.c.value.offeredSecurityTypes, [SecurityType.VncAuthentication]);
    }

    const wrong = await inMemory({ maxVersion, password: 'guess' }, { securityTypes: [SecurityType.VncAuthentication], password: 'sesame', failureReason: 'wrong password' });
    assert.equal(wrong.c.status, 'rejected');
    assert.equal(wrong.s.status, 'rejected');
    if (wrong.c.status === 'rejected' && wrong.s.status === 'rejected') {
      assert.ok(wrong.c.reason instanceof BackendError);
      assert.equal(wrong.c.reason.code, 'BACKEND_AUTH_FAILED');
      // RFC 6143 7.1.3: only 3.8 carries the reason.
      assert.match(wrong.c.reason.message, maxVersion === '3.8' ? /rejected the VNC password: wrong password/ : /rejected the VNC password \(SecurityResult 1\)/);
      assert.ok(wrong.s.reason instanceof AuthError);
      assert.doesNotMatch(wrong.c.reason.message, /guess|sesame/);
    }
  });
}

test('with both types offered the client picks None; with VNC auth only and no password it says so', async () => {
  const both = await inMemory({ password: 'pw' }, { securityTypes: [SecurityType.VncAuthentication, SecurityType.None], password: 'pw' });
  assert.ok(both.c.status === 'fulfilled' && both.c.value.securityType === SecurityType.None);
  const noPassword = await inMemory({}, { securityTypes: [SecurityType.VncAuthentication], password: 'pw' });
  assert.ok(noPassword.c.status === 'rejected');
  assert.match(String(noPassword.c.reason), /requires VNC authentication but no password is configured \(offered: VncAuthentication\(2\)\)/);
});

test('over TCP on 127.0.0.1: handshake, ServerInit, leftover bytes stay in the reader', async () => {
  const server = net.createServer((sock) => {
    const reader = new ByteReader();
    sock.on('data', (d) => reader.push(d));
    sock.on('close', () => reader.end());
    serverHandshake(reader, (b) => sock.write(b), { securityTypes: [SecurityType.VncAuthentication], password: 'tcp-pw' })
      .then(() => sock.write(Buffer.concat([encodeServerInit(serverInit), encodeBell(), encodeBell()])))
      .catch(() => sock.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const sock = net.connect(port, '127.0.0.1');
  const reader = new ByteReader();
  sock.on('data', (d) => reader.push(d));
  sock.on('close', () => reader.end());
  try {
    const result = await clientHandshake(reader, (b) => sock.write(b), { password: 'tcp-pw' });
    assert.equal(result.version, '3.8');
    assert.equal(result.serverInit.name, 'ecs-test-01');
    while (reader.bufferedLength < 2) await tick();
    assert.deepEqual(reader.takeRemainder(), Buffer.concat([encodeBell(), encodeBell()]));
  } finally {
    sock.destroy();
    server.close();
  }
});

/** Runs one side of a handshake against scripted peer bytes delivered in `chunks`. */
async function against<T>(chunks: Buffer[], run: (reader: ByteReader, write: (b: Buffer) => void) => Promise<T>) {
  const reader = new ByteReader();
  const written: Buffer[] = [];
  const result = run(reader, (b) => written.push(b));
  result.catch(() => undefined);
  for (const c of chunks) {
    reader.push(c);
    await tick();
  }
  return { result, written: () => Buffer.concat(written), reader };
}

function clientAgainst(chunks: Buffer[], opts: ClientHandshakeOptions = {}) {
  return against(chunks, (reader, write) => clientHandshake(reader, write, opts));
}

const challenge = Buffer.from([...Array(16).keys()]);
const initBytes = encodeServerInit({ ...serverInit, name: 'vm-42' });

test('clientHandshake reads a 3.8 VNC-auth server at every split point and byte by byte', async () => {
  const script = Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([2, 19, 2]), challenge, Buffer.alloc(4), initBytes, Buffer.from([2])]);
  const expectedWrites = Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([2]), vncAuthResponse('password', challenge), Buffer.from([1])]);
  assert.equal(vncAuthResponse('password', challenge).toString('hex'), 'b866924125c8eebb9debc1db61c538e2');
  for (const { label, chunks } of chunkings(script)) {
    const run = await clientAgainst(chunks, { password: 'password' });
    const r = await run.result;
    assert.equal(r.serverInit.name, 'vm-42', label);
    assert.deepEqual(r.offeredSecurityTypes, [19, 2], label);
    assert.deepEqual(run.written(), expectedWrites, label);
    assert.deepEqual(run.reader.takeRemainder(), Buffer.from([2]), label);
  }
});

test('clientHandshake reads 3.3 and 3.7 None servers (no SecurityResult) at every split point', async () => {
  const v33 = Buffer.concat([Buffer.from('RFB 003.003\n'), Buffer.from('00000001', 'hex'), initBytes]);
  const v37 = Buffer.concat([Buffer.from('RFB 003.007\n'), Buffer.from([1, 1]), initBytes]);
  const apple = Buffer.concat([Buffer.from('RFB 003.889\n'), Buffer.from('00000001', 'hex'), initBytes]);
  for (const [script, version, writes] of [
    [v33, '3.3', 'RFB 003.003\n\x01'],
    [v37, '3.7', 'RFB 003.007\n\x01\x01'],
    [apple, '3.3', 'RFB 003.003\n\x01'],
  ] as const) {
    for (const { label, chunks } of chunkings(script)) {
      const run = await clientAgainst(chunks);
      const r = await run.result;
      assert.equal(r.version, version, label);
      assert.equal(run.written().toString('latin1'), writes, label);
    }
  }
});

async function clientFails(script: Buffer, code: string, message: RegExp, opts: ClientHandshakeOptions = {}): Promise<void> {
  const run = await clientAgainst([script], opts);
  run.reader.end(); // the scripted server hangs up after its bytes
  await assert.rejects(run.result, (e: unknown) => e instanceof BackendError && e.code === code && message.test(e.message));
}

test('clientHandshake: junk and bad versions are BACKEND_PROTOCOL', async () => {
  await clientFails(Buffer.from('SSH-2.0-OpenSSH_9\r\n'), 'BACKEND_PROTOCOL', /at ProtocolVersion: not an RFB ProtocolVersion: "SSH-2.0-Open"/);
  await clientFails(Buffer.from('RFB 002.000\n'), 'BACKEND_PROTOCOL', /unsupported RFB version 002.000/);
  await clientFails(Buffer.from('RFB 003.008\n\x01\x01\x00\x00\x00\x02'), 'BACKEND_PROTOCOL', /closed the connection during the RFB handshake \(at SecurityResult\)/);
});

test('clientHandshake: refusals and unsupported types are BACKEND_AUTH_FAILED with the reason or the types', async () => {
  const reason = Buffer.from('too many connections');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(reason.length);
  await clientFails(Buffer.concat([Buffer.from('RFB 003.008\n\x00'), len, reason]), 'BACKEND_AUTH_FAILED', /refused the connection: too many connections/);
  await clientFails(Buffer.concat([Buffer.from('RFB 003.003\n\x00\x00\x00\x00'), len, reason]), 'BACKEND_AUTH_FAILED', /refused the connection: too many connections/);
  await clientFails(Buffer.from('RFB 003.008\n\x02\x13\x10'), 'BACKEND_AUTH_FAILED', /requires TLS \(VeNCrypt\) but this target is not set to use TLS \(offered: VeNCrypt\(19\), Tight\(16\)/);
  await clientFails(Buffer.from('RFB 003.008\n\x02\x10\x11'), 'BACKEND_AUTH_FAILED', /no security type we support \(offered: Tight\(16\), Ultra\(17\)/);
  await clientFails(Buffer.from('RFB 003.003\n\x00\x00\x00\x12'), 'BACKEND_AUTH_FAILED', /offered: TLS\(18\)/);
  await clientFails(Buffer.from('RFB 003.008\n\x01\x01\x00\x00\x00\x01\x00\x00\x00\x03nop'), 'BACKEND_AUTH_FAILED', /refused the connection: nop/);
});

test('clientHandshake: oversized reason and name lengths fail before their bytes arrive', async () => {
  // Only the length arrives: the error must not wait for (or reserve) the claimed bytes.
  await clientFails(Buffer.from('RFB 003.008\n\x00\xff\xff\xff\xff', 'latin1'), 'BACKEND_PROTOCOL', /failure reason of 4294967295 bytes exceeds the limit of 256/);
  await clientFails(Buffer.from('RFB 003.008\n\x00\x00\x00\x01\x01'), 'BACKEND_PROTOCOL', /failure reason of 257 bytes exceeds the limit of 256/);
  const bigName = Buffer.from(initBytes.subarray(0, 24));
  bigName.writeUInt32BE(0x7fffffff, 20);
  await clientFails(Buffer.concat([Buffer.from('RFB 003.008\n\x01\x01\x00\x00\x00\x00'), bigName]), 'BACKEND_PROTOCOL', /desktop name of 2147483647 bytes exceeds the limit of 1024/);
  const badPf = Buffer.from(initBytes);
  badPf[4] = 24;
  await clientFails(Buffer.concat([Buffer.from('RFB 003.008\n\x01\x01\x00\x00\x00\x00'), badPf]), 'BACKEND_PROTOCOL', /invalid pixel format in ServerInit/);
  await clientFails(Buffer.concat([Buffer.from('RFB 003.008\n\x01\x01\x00\x00\x00\x00'), initBytes]), 'BACKEND_PROTOCOL', /desktop name of 5 bytes exceeds the limit of 4/, { maxNameLength: 4 });
});

test('clientHandshake: an aborted signal or a transport error is BACKEND_UNREACHABLE', async () => {
  const ac = new AbortController();
  const reader = new ByteReader();
  const p = clientHandshake(reader, () => undefined, { signal: ac.signal });
  reader.push(Buffer.from('RFB 003.008\n'));
  await tick();
  ac.abort(new Error('handshake timeout'));
  await assert.rejects(p, (e: unknown) => e instanceof BackendError && e.code === 'BACKEND_UNREACHABLE' && /did not complete in time \(at security types\)/.test(e.message));
  const r2 = new ByteReader();
  const p2 = clientHandshake(r2, () => undefined);
  r2.end(new Error('ECONNRESET'));
  await assert.rejects(p2, (e: unknown) => e instanceof BackendError && e.code === 'BACKEND_UNREACHABLE');
});

function serverAgainst(chunks: Buffer[], opts: ServerHandshakeOptions) {
  return against(chunks, (reader, write) => serverHandshake(reader, write, opts));
}

test('serverHandshake reads 3.8, 3.7 and 3.3 clients at every split point and byte by byte', async () => {
  const cases: Array<[string, string, RfbVersion, string]> = [
    ['RFB 003.008\n\x01\x00', 'RFB 003.008\n\x01\x01\x00\x00\x00\x00', '3.8', 'None'],
    ['RFB 003.007\n\x01\x01', 'RFB 003.008\n\x01\x01', '3.7', 'None'],
    ['RFB 003.003\n\x01', 'RFB 003.008\n\x00\x00\x00\x01', '3.3', 'None'],
  ];
  for (const [script, expectedWrites, version] of cases) {
    for (const { label, chunks } of chunkings(Buffer.from(script, 'latin1'))) {
      const run = await serverAgainst(chunks, { securityTypes: [SecurityType.None] });
      assert.deepEqual(await run.result, { version, securityType: SecurityType.None, shared: version !== '3.8' }, label);
      assert.equal(run.written().toString('latin1'), expectedWrites, label);
    }
  }
  // VNC authentication with a verify callback (the challenge is random, so the response is not checked here).
  const response = Buffer.alloc(16, 7);
  const script = Buffer.concat([Buffer.from('RFB 003.008\n\x02'), response, Buffer.from([1])]);
  for (const { label, chunks } of chunkings(script)) {
    let seen: Buffer | undefined;
    const run = await serverAgainst(chunks, { securityTypes: [SecurityType.VncAuthentication], verifyVncAuth: (_c, r) => ((seen = r), true) });
    assert.equal((await run.result).securityType, SecurityType.VncAuthentication, label);
    assert.deepEqual(seen, response, label);
  }
});

test('serverHandshake refuses bad client versions and types it did not offer', async () => {
  for (const v of ['RFB 003.005\n', 'RFB 004.000\n', 'RFB 003.889\n', 'GET / HTTP/1.1']) {
    const run = await serverAgainst([Buffer.from(v)], { securityTypes: [SecurityType.None] });
    await assert.rejects(run.result, ProtocolError, v);
  }
  const lower = await serverAgainst([Buffer.from('RFB 003.008\n')], { version: '3.7', securityTypes: [SecurityType.None] });
  await assert.rejects(lower.result, /client asked for RFB 3.8, above the offered 3.7/);
  const picked = await serverAgainst([Buffer.from('RFB 003.008\n\x02')], { securityTypes: [SecurityType.None] });
  await assert.rejects(picked.result, /client chose security type VncAuthentication\(2\) was not offered/);
  assert.match(picked.written().toString('latin1'), /\x00\x00\x00\x01\x00\x00\x00.security type VncAuthentication\(2\) was not offered$/);
});

for (const version of ['3.3', '3.7', '3.8'] as const) {
  test(`serverRefuseSecurity tells an RFB ${version} client why`, async () => {
    const toServer = new ByteReader();
    const toClient = new ByteReader();
    const server = serverNegotiateVersion(toServer, (b) => toClient.push(b)).then((v) => {
      serverRefuseSecurity((b) => toClient.push(b), v, 'backend unreachable: connection refused');
      toClient.end();
    });
    const client = clientHandshake(toClient, (b) => toServer.push(b), { maxVersion: version });
    await server;
    await assert.rejects(client, (e: unknown) => e instanceof BackendError && e.code === 'BACKEND_AUTH_FAILED' && /backend unreachable: connection refused/.test(e.message));
  });
}
