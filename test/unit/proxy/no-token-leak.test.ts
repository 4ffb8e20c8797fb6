/** No console token in any log line, audit record or metric, over a full run of the proxy. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DemoVncServer } from '../../../src/demo/index.js';
import { consoleFailure, openConsole, openWs, wsUrlOf } from '../../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../../helpers/huawei-sdk.js';
import { http } from '../../helpers/signed-fetch.js';
import { seed, startStack } from '../../helpers/stack.js';

test('tokens never appear in logs, audit records or metrics', async () => {
  const vnc = new DemoVncServer({ name: 'leak', password: 'leakpw', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  const stack = await startStack();
  const tokens: string[] = [];
  let audit = '';
  let metrics = '';
  try {
    const s = await seed(stack.app, { host: '127.0.0.1', port, auth: 'vnc-password', password: 'leakpw' });
    const issue = async (id = s.active.id): Promise<string> => {
      const u = (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), id)).remote_console.url;
      tokens.push(new URL(u).searchParams.get('token')!);
      return u;
    };
    const ok = await openConsole(await issue());
    await ok.client.waitUntil(() => ok.client.updateCount > 0);
    await openWs(wsUrlOf(ok.ws.url.replace('ws:', 'http:').replace('/websockify', '/vnc_auto.html')));
    const u2 = await issue();
    await openWs(wsUrlOf(u2), { origin: 'https://evil.example' });
    await http('POST', `${stack.proxyUrl}/api/console/info`, { 'content-type': 'application/json' }, JSON.stringify({ token: tokens[1] }));
    const forged = '11111111-2222-4333-8444-555555555555';
    tokens.push(forged);
    await openWs(wsUrlOf(u2, forged));
    const wrong = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'wrong', console: { host: '127.0.0.1', port, auth: 'vnc-password', password: 'nopenope' } });
    await consoleFailure(await issue(wrong.id));
    ok.ws.close();
    await ok.closed;
    await new Promise((r) => setTimeout(r, 100));
    audit = JSON.stringify(await stack.app.services.stores.audit.listAudit({ limit: 10_000 }));
    metrics = (await http('GET', `${stack.proxyUrl}/metrics`)).text + (await http('GET', `${stack.apiUrl}/metrics`)).text;
  } finally {
    await stack.stop();
    await vnc.close();
  }
  assert.ok(tokens.length >= 4);
  assert.match(stack.logs.text, /console refused/);
  assert.match(audit, /"kind":"closed"/);
  for (const t of tokens) {
    for (const [where, text] of [['logs', stack.logs.text], ['audit', audit], ['metrics', metrics]] as const) {
      assert.ok(!text.includes(t), `a token appears in ${where}`);
      assert.ok(!text.includes(t.replace(/-/g, '')), `a token (without dashes) appears in ${where}`);
    }
  }
  assert.ok(!stack.logs.text.includes('leakpw') && !stack.logs.text.includes('nopenope'), 'a VNC password appears in the logs');
});
