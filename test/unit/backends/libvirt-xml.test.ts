/**
 * The libvirt driver's reading of a domain's live XML (the VNC device, its address) and the
 * device XML it gives `virsh update-device`: the one-time password exactly as drawn, whatever
 * characters it holds. Real libvirt: test/system/libvirt.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oneTimePassword } from '../../../src/backends/drivers.js';
import { parseVncGraphics } from '../../../src/backends/libvirt.js';
import { BackendError } from '../../../src/errors.js';

const LIVE = `<domain type='qemu' id='4'>
  <name>vm1</name>
  <devices>
    <graphics type='spice' port='5930' autoport='yes' listen='10.0.0.9'/>
    <graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1' passwdValidTo='1970-01-01T00:00:01' keymap='en-us'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
  </devices>
</domain>`;

/** Attribute values of the first start tag, unescaped as an XML parser does. */
function attrs(xml: string): Record<string, string> {
  const tag = /^<graphics\b[^>]*>/.exec(xml)![0];
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/(\w+)='([^']*)'/g)) out[m[1]!] = m[2]!.replace(/&#(\d+);/g, (_, d: string) => String.fromCharCode(Number(d)));
  return out;
}

test('the VNC device of the live XML: port, listen address, the rest kept; its old password attributes dropped', () => {
  const g = parseVncGraphics(LIVE)!;
  assert.equal(g.port, 5901);
  assert.equal(g.host('qemu:///system'), '127.0.0.1');
  const xml = g.withPassword('abcdefgh', Date.UTC(2030, 0, 2, 3, 4, 5, 678));
  assert.deepEqual(attrs(xml), { passwd: 'abcdefgh', passwdValidTo: '2030-01-02T03:04:05', type: 'vnc', port: '5901', autoport: 'yes', listen: '127.0.0.1', keymap: 'en-us' });
  assert.match(xml, /<listen type='address' address='127\.0\.0\.1'\/>\s*<\/graphics>$/);
  // An expiry at or before the epoch is written as its first second (libvirt's "now").
  assert.equal(attrs(g.withPassword('x', 0))['passwdValidTo'], '1970-01-01T00:00:01');
});

test('one-time passwords reach the device XML exactly, with $, quotes, & and < among them', () => {
  const g = parseVncGraphics(LIVE)!;
  for (const p of ['$&$\'$`$1', 'a"b\'c&d<', '&#39;&amp;', ...Array.from({ length: 500 }, oneTimePassword)]) {
    assert.equal(attrs(g.withPassword(p, 0))['passwd'], p, p);
  }
});

test('wildcard and missing listen addresses fall back to the URI\'s host; unix sockets and missing devices are refused', () => {
  const any = parseVncGraphics(`<graphics type='vnc' port='5905' listen='0.0.0.0'/>`)!;
  assert.equal(any.host('qemu+ssh://root@hv3.example.test/system'), 'hv3.example.test');
  assert.equal(any.host('qemu:///system'), '127.0.0.1');
  assert.equal(parseVncGraphics(`<graphics type='vnc' port='-1' autoport='yes'/>`)!.port, -1);
  assert.equal(parseVncGraphics(`<graphics type='spice' port='5900'/>`), null);
  assert.throws(() => parseVncGraphics(`<graphics type='vnc'><listen type='socket' socket='/run/vnc.sock'/></graphics>`),
    (e: unknown) => e instanceof BackendError && e.failure === 'libvirt' && /unix socket/.test(e.message));
});
