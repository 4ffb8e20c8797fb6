/**
 * The floor: a minimal WebSocket-to-TCP relay on `ws`, as lean as Node allows. No token, no
 * Origin check, no RFB parsing, no store, no logging; the same `ws` options as our proxy
 * (no compression, no client tracking, "binary" subprotocol) and the same kind of backpressure,
 * so that the difference to our proxy is what our proxy does, not how it relays.
 */
import net from 'node:net';
import { once } from 'node:events';
import { WebSocketServer } from 'ws';
import { announce, childArgs, serveIpc } from './lib/child-ipc.js';

const { targetPort } = childArgs<{ targetPort: number }>();
const HIGH_WATER = 1024 * 1024;
let open = 0;

const wss = new WebSocketServer({
  host: '127.0.0.1', port: 0, backlog: 4096, perMessageDeflate: false, clientTracking: false,
  handleProtocols: (p) => (p.has('binary') ? 'binary' : false),
});
wss.on('connection', (ws) => {
  open++;
  const tcp = net.connect({ host: '127.0.0.1', port: targetPort });
  tcp.setNoDelay(true);
  let queued = 0;
  tcp.on('data', (d: Buffer) => {
    queued += d.length;
    ws.send(d, { binary: true }, () => {
      queued -= d.length;
      if (queued < HIGH_WATER && tcp.isPaused()) tcp.resume();
    });
    if (queued >= HIGH_WATER) tcp.pause();
  });
  ws.on('message', (d) => {
    // binaryType "nodebuffer": whole messages arrive as one Buffer.
    if (!tcp.write(d as Buffer)) ws.pause();
  });
  tcp.on('drain', () => ws.resume());
  const end = (): void => {
    tcp.destroy();
    ws.terminate();
  };
  tcp.on('close', end);
  tcp.on('error', end);
  ws.on('close', end);
  ws.on('error', end);
  ws.once('close', () => open--);
});
await once(wss, 'listening');
serveIpc({ count: () => ({ open }) }, async () => {
  wss.close();
});
announce({ port: (wss.address() as net.AddressInfo).port });
