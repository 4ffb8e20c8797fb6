/** Running the real `ecs-console` binary (compiled) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ecs-console <args>` to completion (in `cwd`, by default the test's). */
export function runCli(args: string[], env: Record<string, string> = {}, stdin?: string, cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin ?? '');
  });
}

/** How long a started command may take to listen (or exit): generous, for a loaded machine. */
const START_TIMEOUT_MS = 60_000;

export interface RunningServer {
  child: ChildProcess;
  apiUrl: string;
  proxyUrl: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `ecs-console <role>` (in `cwd`, by default the test's) and waits until it prints its addresses. */
export function startCli(args: string[], env: Record<string, string>, cwd?: string): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    let apiUrl = '';
    let proxyUrl = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // A process that did not start is killed, or its open pipes would keep the test run alive
    // (it hung a suite once, after 'did not start' under heavy load).
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`did not start within ${START_TIMEOUT_MS / 1000} s: ${stderr}`));
    }, START_TIMEOUT_MS);
    const check = (): void => {
      const wantsApi = args[0] !== 'proxy';
      const wantsProxy = args[0] !== 'api';
      if ((!wantsApi || apiUrl) && (!wantsProxy || proxyUrl)) {
        clearTimeout(timer);
        resolve({ child, apiUrl, proxyUrl, stdout: () => stdout, stderr: () => stderr, exited });
      }
    };
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      apiUrl ||= /API on (http\S+)/.exec(stderr)?.[1] ?? '';
      proxyUrl ||= /console proxy on (http\S+)/.exec(stderr)?.[1] ?? '';
      check();
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before starting: ${stderr}`));
    });
  });
}

/**
 * Starts `ecs-console <args>` and reports whether it exited (with its code and stderr) or
 * started listening (then it is stopped), whichever comes first.
 */
export function startOrExit(args: string[], env: Record<string, string>): Promise<{ started: boolean; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`neither exited nor started within ${START_TIMEOUT_MS / 1000} s: ${stderr}`));
    }, START_TIMEOUT_MS);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!started && /(API|console proxy) on https?:\/\//.test(stderr)) {
        started = true;
        child.kill('SIGTERM');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ started, code, stderr });
    });
  });
}

/** What seedWithCli made: a project, a user `u` (domain `d`) with a password, a server. */
export interface CliSeed {
  projectId: string;
  serverId: string;
  password: string;
}

/** Initialises a store with the CLI and adds a project, a password user and one server on `backendPort`. */
export async function seedWithCli(env: Record<string, string>, backendPort: number): Promise<CliSeed> {
  const must = (r: CliResult): CliResult => {
    if (r.code !== 0) throw new Error(`ecs-console failed (${r.code}): ${r.stderr}`);
    return r;
  };
  must(await runCli(['init'], env));
  const projectId = JSON.parse(must(await runCli(['project', 'create', '--name', 'p1', '--domain', 'd', '--json'], env)).stdout).id as string;
  const password = 'password-123';
  must(await runCli(['user', 'create', '--domain', 'd', '--name', 'u', '--password-stdin'], env, `${password}\n`));
  const srv = must(await runCli(['server', 'add', '--project', projectId, '--name', 'web', '--host', '127.0.0.1', '--port', String(backendPort), '--json'], env));
  return { projectId, serverId: JSON.parse(srv.stdout).id as string, password };
}

/** An IAM token of the seeded user, by password, from the (plain HTTP) API of a running `serve`. */
export async function iamTokenFrom(apiUrl: string, s: CliSeed): Promise<string> {
  const { http } = await import('./signed-fetch.js');
  const tok = await http('POST', `${apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, JSON.stringify({
    auth: { identity: { methods: ['password'], password: { user: { name: 'u', password: s.password, domain: { name: 'd' } } } }, scope: { project: { id: s.projectId } } },
  }));
  if (tok.status !== 201) throw new Error(`IAM token: ${tok.status} ${tok.text}`);
  return String(tok.headers['x-subject-token']);
}

/** A console URL from the (plain HTTP) API of a running `serve`: an IAM token by password (or the one given), then remote_console. */
export async function consoleUrlFrom(apiUrl: string, s: CliSeed, iamToken?: string): Promise<string> {
  const { http } = await import('./signed-fetch.js');
  const rc = await http('POST', `${apiUrl}/v1/${s.projectId}/cloudservers/${s.serverId}/remote_console`,
    { 'content-type': 'application/json', 'x-auth-token': iamToken ?? await iamTokenFrom(apiUrl, s) }, '{"remote_console":{"type":"novnc","protocol":"vnc"}}');
  if (rc.status !== 200) throw new Error(`remote_console: ${rc.status} ${rc.text}`);
  return rc.json.remote_console.url as string;
}
