/**
 * Consoles through API -> proxy -> a real VNC server with password authentication: TigerVNC's
 * Xvnc and QEMU. The browser side (an RFB client over WebSocket) is offered security type None
 * only and receives framebuffer updates. Fails, never skips, when a package is missing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SecurityType } from '../../src/rfb/index.js';
import { CloseCode } from '../../src/proxy/close-codes.js';
import { consoleFailure, openConsole } from '../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../helpers/huawei-sdk.js';
import { startQemu, startXvnc, type RealVnc, type XvncServer } from '../helpers/real-vnc.js';
import { seed, startStack, type Seed, type Stack } from '../helpers/stack.js';

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
});
