/**
 * The API's floor: a bare `node:http` server answering remote_console with the same JSON shape
 * (a console URL holding a fresh UUID token), after reading and parsing the body; no
 * authentication, no store, no framework, no logging.
 */
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { announce, serveIpc } from './lib/child-ipc.js';

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let ok = false;
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { remote_console?: { type?: string } };
      ok = body.remote_console?.type === 'novnc';
    } catch {
      /* answered 400 below */
    }
    if (!ok) {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      return void res.end('{"error_code":"Common.0011"}');
    }
    const url = `http://127.0.0.1:6080/vnc_auto.html?token=${randomUUID()}&lang=EN&tLength=70`;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ remote_console: { type: 'novnc', protocol: 'vnc', url } }));
  });
});
server.keepAliveTimeout = 65_000;
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
await once(server, 'listening');
serveIpc({}, async () => {
  server.close();
});
announce({ port: (server.address() as AddressInfo).port });
