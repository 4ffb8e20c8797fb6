/**
 * Runs the demo VNC server on its own (the CLI's `demo-vnc` command calls this).
 */
import { ValidationError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { DemoVncServer } from './demo-vnc-server.js';

/** Options of {@link runDemoVnc}. */
export interface RunDemoVncOptions {
  /** "host:port", "[v6]:port" or ":port" (loopback). */
  listen: string;
  /** VNC Authentication password; None when absent. */
  password?: string | undefined;
  /** Desktop name; default "ecs-demo". */
  name?: string | undefined;
  logger?: Logger;
}

/** Parses "host:port", "[::1]:port" or ":port"; throws ValidationError naming `listen`. */
export function parseListenAddress(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new ValidationError(`listen address must be host:port (e.g. 127.0.0.1:5900), got ${JSON.stringify(listen)}`, 'listen');
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Starts a demo VNC server; resolves once it listens. Stop it with `server.close()`. */
export async function runDemoVnc(opts: RunDemoVncOptions): Promise<{ server: DemoVncServer; host: string; port: number }> {
  const { host, port } = parseListenAddress(opts.listen);
  if (opts.password !== undefined && opts.password.length === 0) throw new ValidationError('password must not be empty', 'password');
  const server = new DemoVncServer({
    name: opts.name ?? 'ecs-demo',
    password: opts.password,
    logger: opts.logger ?? createLogger({ name: 'demo-vnc' }),
  });
  const addr = await server.listen(port, host);
  return { server, ...addr };
}
