/** Running the real `ecs-console` binary (compiled) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ecs-console <args>` to completion. */
export function runCli(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
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

export interface RunningServer {
  child: ChildProcess;
  apiUrl: string;
  proxyUrl: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `ecs-console <role>` and waits until it prints its addresses. */
export function startCli(args: string[], env: Record<string, string>): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let apiUrl = '';
    let proxyUrl = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const timer = setTimeout(() => reject(new Error(`did not start: ${stderr}`)), 15_000);
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
