/**
 * `console-url`: a client of the remote_console call. Signs with AK/SK like the official SDKs, so
 * it works against any ECS endpoint, ours or Huawei Cloud's, and prints the console URL.
 */
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { ConsoleError, ValidationError } from '../errors.js';
import { signRequest } from '../identity/sdk-hmac-signer.js';
import { DEMO_DATA_DIR, DEMO_FILE, type DemoInfo } from './demo-mode.js';

interface Creds {
  endpoint: string;
  ak: string;
  sk: string;
  projectId: string;
}

function fromDemo(dataDir: string): Partial<Creds> {
  try {
    const d = JSON.parse(readFileSync(join(dataDir, DEMO_FILE), 'utf8')) as DemoInfo;
    return { endpoint: d.apiUrl, ak: d.ak, sk: d.sk, projectId: d.projectId };
  } catch {
    return {};
  }
}

function post(url: URL, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolvePost, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, timeout: 30_000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolvePost({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error('the endpoint did not answer within 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Opens a URL in the default browser. */
function openInBrowser(url: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true });
  child.on('error', () => process.stderr.write(`could not start ${cmd}: open the URL above yourself\n`));
  child.unref();
}

export function consoleUrlCommand(): Command {
  return new Command('console-url')
    .description('get a console URL from an ECS endpoint (ours or Huawei Cloud\'s), signed with AK/SK')
    .requiredOption('--server <id>', 'server id')
    .option('--endpoint <url>', 'ECS endpoint, e.g. https://ecs.cn-north-4.myhuaweicloud.com (env ECS_CONSOLE_ENDPOINT; default: the demo\'s API)')
    .option('--ak <ak>', 'access key (env HUAWEICLOUD_SDK_AK; default: the demo\'s)')
    .option('--sk <sk>', 'secret key (env HUAWEICLOUD_SDK_SK; default: the demo\'s)')
    .option('--project <id>', 'project id (env HUAWEICLOUD_SDK_PROJECT_ID; default: the demo\'s)')
    .option('--data-dir <dir>', 'where demo.json is (env ECS_CONSOLE_DATA_DIR)', process.env['ECS_CONSOLE_DATA_DIR'] ?? DEMO_DATA_DIR)
    .option('--lang <lang>', 'console page language: en or zh-cn', 'en')
    .option('--open', 'open the URL in the default browser')
    .action(async (o: { server: string; endpoint?: string; ak?: string; sk?: string; project?: string; dataDir: string; lang: string; open?: boolean }) => {
      const env = process.env;
      const demo = fromDemo(resolve(o.dataDir));
      const c: Partial<Creds> = {
        endpoint: o.endpoint ?? env['ECS_CONSOLE_ENDPOINT'] ?? demo.endpoint,
        ak: o.ak ?? env['HUAWEICLOUD_SDK_AK'] ?? demo.ak,
        sk: o.sk ?? env['HUAWEICLOUD_SDK_SK'] ?? demo.sk,
        projectId: o.project ?? env['HUAWEICLOUD_SDK_PROJECT_ID'] ?? demo.projectId,
      };
      for (const [k, flag] of [['endpoint', '--endpoint'], ['ak', '--ak'], ['sk', '--sk'], ['projectId', '--project']] as const) {
        if (!c[k]) throw new ValidationError(`${flag} is required (or run the demo first: npm start)`, k);
      }
      let base: URL;
      try {
        base = new URL(c.endpoint!);
      } catch {
        throw new ValidationError(`--endpoint is not a URL: ${JSON.stringify(c.endpoint)}`, 'endpoint');
      }
      const url = new URL(`/v1/${encodeURIComponent(c.projectId!)}/cloudservers/${encodeURIComponent(o.server)}/remote_console`, base);
      const body = JSON.stringify({ remote_console: { type: 'novnc', protocol: 'vnc' } });
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-project-id': c.projectId! };
      if (o.lang.toLowerCase() === 'zh-cn') headers['x-language'] = 'zh-cn';
      const signed = signRequest({ method: 'POST', url, headers, body }, c.ak!, c.sk!, Date.now());
      let r;
      try {
        r = await post(url, signed, body);
      } catch (e) {
        throw new ConsoleError('BACKEND_UNREACHABLE', `cannot reach ${base.origin}: ${(e as Error).message}`);
      }
      let json: { remote_console?: { url?: string }; error?: { code?: string; message?: string }; error_code?: string; error_msg?: string } = {};
      try {
        json = JSON.parse(r.text) as typeof json;
      } catch {
        /* reported below */
      }
      const consoleUrl = json.remote_console?.url;
      if (r.status !== 200 || !consoleUrl) {
        const code = json.error?.code ?? json.error_code ?? `HTTP ${r.status}`;
        const msg = json.error?.message ?? json.error_msg ?? r.text.slice(0, 200);
        throw new ConsoleError('INTERNAL', `the endpoint answered ${r.status} ${code}: ${msg}`);
      }
      process.stdout.write(consoleUrl + '\n');
      if (o.open) openInBrowser(consoleUrl);
    });
}
