/** `demo-vnc`: the built-in demo VNC server on its own (a test peer and a tool for operators). */
import { Command } from 'commander';
import { runDemoVnc } from '../demo/index.js';
import { createLogger } from '../log.js';

export function demoVncCommand(): Command {
  return new Command('demo-vnc')
    .description('run the built-in demo VNC server (a text console) on its own')
    .option('--listen <host:port>', 'where to listen', '127.0.0.1:5900')
    .option('--password <password>', 'require VNC authentication with this password (VNC uses at most 8 characters)')
    .option('--name <name>', 'desktop name, shown in the login prompt', 'ecs-demo')
    .action(async (o: { listen: string; password?: string; name: string }) => {
      const { server, host, port } = await runDemoVnc({ listen: o.listen, password: o.password, name: o.name, logger: createLogger({ name: 'demo-vnc', level: 'info' }) });
      process.stderr.write(`demo VNC server "${o.name}" on ${host}:${port} (${o.password ? 'VNC authentication' : 'no authentication'})\n`);
      const stop = (): void => void server.close().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
