/**
 * A flood of bad password logins (POST /v3/auth/tokens), in its own process: `perAddress`
 * keep-alive connections from each of `addresses` (loopback addresses: the API sees one client
 * each), every request a wrong password for a fresh user name (a spray), back to back until told
 * to stop. Reports how many requests completed and their statuses.
 */
import { Agent } from 'node:http';
import { loginBody, post } from './lib/api-client.js';
import { childArgs, serveIpc } from './lib/child-ipc.js';

export interface LoginFloodArgs {
  port: number;
  domain: string;
  projectId: string;
  addresses: string[];
  perAddress: number;
}

const a = childArgs<LoginFloodArgs>();
const statuses: Record<string, number> = {};
let requests = 0;
let stopping = false;
const started = performance.now();

async function worker(agent: Agent, address: string, w: number): Promise<void> {
  for (let i = 0; !stopping; i++) {
    let status = 0;
    try {
      status = (await post(agent, a.port, '/v3/auth/tokens', loginBody(a.domain, `flood-${address}-${w}-${i}`, 'not-the-password', a.projectId), null, {}, address)).status;
    } catch {
      status = -1;
    }
    requests++;
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
}

const agents = a.addresses.map(() => new Agent({ keepAlive: true, maxSockets: a.perAddress }));
const running = a.addresses.flatMap((address, k) => Array.from({ length: a.perAddress }, (_, w) => worker(agents[k]!, address, w)));
serveIpc({
  stop: async () => {
    stopping = true;
    await Promise.all(running);
    for (const agent of agents) agent.destroy();
    return { requests, seconds: (performance.now() - started) / 1000, statuses };
  },
});
process.send?.({ type: 'ready' });
