/**
 * The text the demo console shows before its login prompt: a short, plausible boot log of a cloud
 * server. Kernel lines carry a dim timestamp, systemd lines a green "OK".
 */

/** A piece of text with a colour role. */
export interface Span {
  text: string;
  role: 'normal' | 'dim' | 'ok' | 'bright' | 'notice';
}

/** The boot log for a server called `name`, one array of spans a line. */
export function bootLog(name: string): Span[][] {
  const kernel = (t: string, msg: string): Span[] => [
    { text: `[${t.padStart(12)}] `, role: 'dim' },
    { text: msg, role: 'normal' },
  ];
  const ok = (msg: string): Span[] => [
    { text: '[', role: 'normal' },
    { text: '  OK  ', role: 'ok' },
    { text: '] ', role: 'normal' },
    { text: msg, role: 'normal' },
  ];
  return [
    kernel('0.000000', 'Linux version 6.1.0-demo (builder@ecs-console) (gcc 12.2.0) #1 SMP PREEMPT_DYNAMIC'),
    kernel('0.000000', 'Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-demo root=/dev/vda1 ro console=tty0 console=ttyS0'),
    kernel('0.000000', 'BIOS-provided physical RAM map:'),
    kernel('0.000000', 'BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable'),
    kernel('0.000000', 'DMI: ecs-console demo machine, BIOS 1.16.2 04/01/2014'),
    kernel('0.000000', 'Hypervisor detected: KVM'),
    kernel('0.104211', 'smpboot: Allowing 2 CPUs, 0 hotplug CPUs'),
    kernel('0.383920', 'virtio_blk virtio2: [vda] 83886080 512-byte logical blocks (42.9 GB/40.0 GiB)'),
    kernel('0.391044', ' vda: vda1 vda14 vda15'),
    kernel('0.612301', 'EXT4-fs (vda1): mounted filesystem with ordered data mode. Quota mode: none.'),
    kernel('0.820113', 'systemd[1]: systemd 252 running in system mode'),
    kernel('0.834551', `systemd[1]: Hostname set to <${name}>.`),
    ok('Created slice system-getty.slice - Slice /system/getty.'),
    ok('Started systemd-journald.service - Journal Service.'),
    ok('Finished systemd-remount-fs.service - Remount Root and Kernel File Systems.'),
    ok('Reached target local-fs.target - Local File Systems.'),
    ok('Started systemd-udevd.service - Rule-based Manager for Device Events and Files.'),
    ok('Reached target network.target - Network.'),
    ok('Started ssh.service - OpenBSD Secure Shell server.'),
    ok('Started cloud-init.service - Cloud-init: Network Stage.'),
    ok('Reached target multi-user.target - Multi-User System.'),
    [],
    [{ text: 'This is the ecs-console demo console: there is no real machine behind this screen.', role: 'notice' }],
    [],
  ];
}
