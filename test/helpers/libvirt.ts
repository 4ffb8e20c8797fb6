/**
 * A real libvirt for system tests: Debian's libvirtd and virtlogd (libvirt-daemon-system), started
 * by the test itself (these machines have no systemd) and stopped after it; domains made with
 * virsh (libvirt-clients). Fails, never skips, when a package is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { requireBinary } from './real-vnc.js';

export const LIBVIRT_URI = 'qemu:///system';

export interface Libvirt {
  readonly uri: string;
  /** Runs virsh against the URI; its stdout. Throws with its stderr when it fails. */
  virsh(args: string[]): string;
  /**
   * Starts a transient domain (TCG, 64 MiB, no disk: SeaBIOS on screen) with VNC on 127.0.0.1
   * and an initial password that has already expired: QEMU then runs VNC with password
   * authentication (`password=on`), which a one-time password needs, and nobody can log in.
   */
  createDomain(name: string): void;
  stop(): Promise<void>;
}

function pidOf(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startLibvirt(): Promise<Libvirt> {
  const libvirtd = requireBinary('/usr/sbin/libvirtd', 'libvirt-daemon-system');
  const virtlogd = requireBinary('/usr/sbin/virtlogd', 'libvirt-daemon-system');
  const virshBin = requireBinary('/usr/bin/virsh', 'libvirt-clients');
  requireBinary('/usr/bin/qemu-system-x86_64', 'qemu-system-x86');
  const virsh = (args: string[]): string => {
    const r = spawnSync(virshBin, ['--quiet', '-c', LIBVIRT_URI, ...args], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`virsh ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
    return r.stdout;
  };
  const answers = (): boolean => spawnSync(virshBin, ['-c', LIBVIRT_URI, 'version'], { encoding: 'utf8', timeout: 10_000 }).status === 0;
  // NOTE: without udev (containers) /dev/kvm stays root-only, while libvirt runs QEMU as
  // libvirt-qemu (group kvm): libvirt then finds its cached QEMU capabilities stale at every
  // start (probed with KVM, "not available now") and probes QEMU again, ~40 s per domain. Debian's
  // udev rule gives /dev/kvm to group kvm, mode 0660; so do we. The domains still use TCG.
  if (existsSync('/dev/kvm') && (statSync('/dev/kvm').mode & 0o060) !== 0o060) {
    execFileSync('chgrp', ['kvm', '/dev/kvm']);
    execFileSync('chmod', ['0660', '/dev/kvm']);
  }
  const dir = mkdtempSync(join(tmpdir(), 'ecs-libvirt-'));
  const started: string[] = [];
  if (!answers()) {
    for (const [bin, name] of [[virtlogd, 'virtlogd'], [libvirtd, 'libvirtd']] as const) {
      const pidFile = join(dir, `${name}.pid`);
      const r = spawnSync(bin, ['-d', '-p', pidFile], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, `${name} did not start: ${r.stderr}`);
      started.push(pidFile);
    }
    for (let i = 0; i < 200 && !answers(); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(answers(), 'libvirtd does not answer virsh');
  }
  const domains: string[] = [];
  return {
    uri: LIBVIRT_URI,
    virsh,
    createDomain(name) {
      const file = join(dir, `${name}.xml`);
      writeFileSync(file, `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='${Math.random().toString(36).slice(2, 10)}' passwdValidTo='1970-01-01T00:00:01'/>
    <video><model type='vga'/></video>
  </devices>
</domain>`);
      virsh(['create', file]);
      domains.push(name);
    },
    async stop() {
      for (const d of domains) {
        try {
          virsh(['destroy', d]);
        } catch {
          // Already gone.
        }
      }
      // Daemons we started, last first (libvirtd, then virtlogd).
      for (const pidFile of started.reverse()) {
        const pid = pidOf(pidFile);
        if (pid === null) continue;
        process.kill(pid, 'SIGTERM');
        await waitGone(pid);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
