/**
 * Consoles through API -> proxy -> a real VNC server with password authentication: TigerVNC's
 * Xvnc and QEMU. The browser side (an RFB client over WebSocket) is offered security type None
 * only and receives framebuffer updates. Fails, never skips, when a package is missing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ByteReader, Encoding, RGB888_PIXEL_FORMAT, SecurityType, ServerCapabilityScanner, clientHandshake, encodeFramebufferUpdateRequest, encodeSetEncodings,
  encodeSetPixelFormat,
} from '../../src/rfb/index.js';
import { CloseCode } from '../../src/proxy/close-codes.js';
import { closeOf, consoleFailure, openConsole, openWs, wsUrlOf } from '../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../helpers/huawei-sdk.js';
import { startQemu, startXvnc, type RealVnc, type XvncServer } from '../helpers/real-vnc.js';
import { seed, startStack, type Seed, type Stack } from '../helpers/stack.js';
import { PNG } from 'pngjs';
import { signedHttp } from '../helpers/signed-fetch.js';

/** noVNC 1.7's SetEncodings at depth 24 (core/rfb.js _sendEncodings), without H.264. */
const NOVNC_ENCODINGS = [1, 7, -260, 16, 21, 5, 2, 6, 0, -26, -254, -223, -224, -258, -261, -308, -309, -312, -313, -307, Encoding.ExtendedClipboard,
  Encoding.ExtendedMouseButtons, 0x574d5664, -239];
/** noVNC's answer to the server's caps, and its notify of text (core/rfb.js RFB.messages). */
const NOVNC_CLIPBOARD = Buffer.from('06000000' + 'fffffff8' + '1f000001' + '00000000' + '06000000' + 'fffffffc' + '08000001', 'hex');

/**
 * Opens a console as noVNC does and checks the ExtendedClipboard exchange goes through: the
 * server's caps reach the browser before its first update, the browser's extended answer reaches
 * the server (the session stays open and keeps serving updates).
 */
async function extendedClipboardGoesThrough(consoleUrl: string): Promise<void> {
  const r = await openWs(wsUrlOf(consoleUrl));
  assert.ok(r.ok);
  const closed = closeOf(r.ws);
  let isClosed: { code: number; reason: string } | null = null;
  void closed.then((c) => (isClosed = c));
  const reader = new ByteReader({ maxReadLength: 1 << 20 });
  r.transport.onData((b) => reader.push(b));
  const { serverInit } = await clientHandshake(reader, (b) => r.transport.write(b), { signal: AbortSignal.timeout(10_000) });
  let received = 0;
  const seen = new ServerCapabilityScanner();
  const take = (): void => {
    const b = reader.takeRemainder();
    received += b.length;
    seen.push(b);
  };
  r.transport.write(Buffer.concat([encodeSetPixelFormat(RGB888_PIXEL_FORMAT), encodeSetEncodings(NOVNC_ENCODINGS), encodeFramebufferUpdateRequest(false, 0, 0, serverInit.width, serverInit.height)]));
  for (let i = 0; i < 200 && !seen.done && !isClosed; i++, take()) await sleep(50);
  assert.equal(seen.endedBy, 'framebuffer-update');
  assert.ok(seen.extendedClipboard, 'the server announced ExtendedClipboard before its first update');
  r.transport.write(NOVNC_CLIPBOARD);
  const before = received;
  r.transport.write(encodeFramebufferUpdateRequest(false, 0, 0, serverInit.width, serverInit.height));
  for (let i = 0; i < 200 && received === before && !isClosed; i++, take()) await sleep(50);
  assert.equal(isClosed, null, 'the session was closed');
  assert.ok(received > before, 'updates keep coming after the extended clipboard messages');
  r.ws.close();
}

describe('TigerVNC Xvnc with VncAuth', () => {
  let xvnc: XvncServer;
  let stack: Stack;
  let s: Seed;
  before(async () => {
    xvnc = await startXvnc('xvncpw1');
    await xvnc.paint('red');
    stack = await startStack();
    s = await seed(stack.app, { host: '127.0.0.1', port: xvnc.port, auth: 'vnc-password', password: 'xvncpw1' });
  });
  after(async () => {
    await stack?.stop();
    await xvnc?.stop();
  });

  test('an RFB client over WebSocket, offered None only, sees the red root window', async () => {
    const url = (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), s.active.id)).remote_console.url;
    const c = await openConsole(url);
    assert.deepEqual(c.client.offeredSecurityTypes, [SecurityType.None]);
    assert.equal(c.client.width, 640);
    assert.equal(c.client.height, 480);
    assert.equal(c.client.name, 'web-01', 'the inventory name, not the X display name');
    await c.client.waitUntil(() => c.client.getPixel(320, 240) === 0xff0000, 10_000);
    assert.equal(c.client.getPixel(10, 10), 0xff0000);
    // The live screen follows the backend.
    await xvnc.paint('#00ff00');
    await c.client.waitUntil(() => c.client.getPixel(320, 240) === 0x00ff00, 10_000);
    c.ws.close();
  });

  test('screenshot API: the PNG shows the colour painted with xsetroot', async () => {
    for (const [colour, rgb] of [['blue', [0, 0, 255]], ['#ffcc00', [255, 204, 0]]] as const) {
      await xvnc.paint(colour);
      const r = await signedHttp('GET', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/screenshot`, '', { ak: s.ak, sk: s.sk, projectId: s.projectId });
      assert.equal(r.status, 200, r.text);
      const png = PNG.sync.read(r.body);
      assert.deepEqual([png.width, png.height], [640, 480]);
      let same = 0;
      for (let i = 0; i < 640 * 480; i++) if (png.data[i * 4] === rgb[0] && png.data[i * 4 + 1] === rgb[1] && png.data[i * 4 + 2] === rgb[2]) same++;
      // Xvnc draws the X pointer into the framebuffer of clients without the cursor pseudo-encoding.
      assert.ok(same > 640 * 480 - 1000, `${colour}: ${same} of ${640 * 480} pixels`);
    }
  });

  test('ExtendedClipboard: announced by Xvnc, noVNC\'s extended answer relayed', async () => {
    await extendedClipboardGoesThrough((await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), s.active.id)).remote_console.url);
  });

  test('a wrong inventory password is reported as an authentication failure', async () => {
    const bad = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'bad', console: { host: '127.0.0.1', port: xvnc.port, auth: 'vnc-password', password: 'nope' } });
    const url = (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), bad.id)).remote_console.url;
    const f = await consoleFailure(url);
    assert.equal(f.code, CloseCode.BackendAuthFailed);
    assert.match(f.rfbError, /Authentication to the server's VNC console failed/);
  });
});

describe('QEMU VNC with a password set over QMP', () => {
  let qemu: RealVnc;
  let stack: Stack;
  let s: Seed;
  before(async () => {
    qemu = await startQemu('qemupw1');
    stack = await startStack();
    s = await seed(stack.app, { host: '127.0.0.1', port: qemu.port, auth: 'vnc-password', password: 'qemupw1' });
  });
  after(async () => {
    await stack?.stop();
    await qemu?.stop();
  });

  test('an RFB client over WebSocket, offered None only, receives the guest screen', async () => {
    const url = (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), s.active.id)).remote_console.url;
    const c = await openConsole(url);
    assert.deepEqual(c.client.offeredSecurityTypes, [SecurityType.None]);
    await c.client.waitUntil(() => c.client.updateCount > 0, 10_000);
    assert.ok(c.client.width >= 640 && c.client.height >= 400, `${c.client.width}x${c.client.height}`);
    // SeaBIOS prints text: the screen is not one colour (wait for it to draw).
    await c.client.waitUntil(() => c.client.countPixelsNot(c.client.getPixel(0, 0)) > 100, 20_000);
    c.ws.close();
  });

  test('ExtendedClipboard: announced by QEMU, noVNC\'s extended answer relayed', async () => {
    await extendedClipboardGoesThrough((await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), s.active.id)).remote_console.url);
  });
});
