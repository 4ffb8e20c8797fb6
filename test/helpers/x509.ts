/**
 * Certificates for TLS tests, made with Debian's openssl (the test fails, never skips, without it):
 * a CA, a VNC server certificate in QEMU's tls-creds-x509 layout (ca-cert.pem, server-cert.pem,
 * server-key.pem in one directory), client certificates, and another CA nobody trusts.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinary } from './real-vnc.js';

export interface Pki {
  readonly dir: string;
  /** The directory QEMU's `-object tls-creds-x509,dir=...,endpoint=server` reads. */
  readonly qemuDir: string;
  readonly caCert: string;
  /** A CA that signed nothing here: "wrong CA". */
  readonly otherCaCert: string;
  /** A client certificate signed by the CA, with this common name; files `<name>-cert.pem`, `<name>-key.pem`. */
  client(name: string): { cert: string; key: string; subject: string };
  /** A client certificate signed by the other CA. */
  foreignClient(name: string): { cert: string; key: string };
}

function ssl(openssl: string, args: string[]): void {
  execFileSync(openssl, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(openssl: string, dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}-cert.pem`);
  const key = join(dir, `${name}-key.pem`);
  ssl(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`]);
  return { cert, key };
}

function sign(openssl: string, dir: string, ca: { cert: string; key: string }, name: string, subject: string, ext: string): { cert: string; key: string } {
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}-cert.pem`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, ext);
  ssl(openssl, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', subject]);
  ssl(openssl, ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', extFile]);
  return { cert, key };
}

/** Makes the CA, the server certificate (for IP 127.0.0.1 and DNS `serverName`) and the other CA in `dir`. */
export function makePki(dir: string, serverName = 'hv1.example.test'): Pki {
  const openssl = requireBinary('/usr/bin/openssl', 'openssl');
  mkdirSync(dir, { recursive: true });
  const ca = makeCa(openssl, dir, 'ca');
  const other = makeCa(openssl, dir, 'other-ca');
  const qemuDir = join(dir, 'qemu');
  mkdirSync(qemuDir);
  const server = sign(openssl, dir, ca, 'server', `/CN=${serverName}`,
    `subjectAltName=IP:127.0.0.1,DNS:${serverName}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n`);
  const clientExt = 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n';
  execFileSync('cp', [ca.cert, join(qemuDir, 'ca-cert.pem')]);
  execFileSync('cp', [server.cert, join(qemuDir, 'server-cert.pem')]);
  execFileSync('cp', [server.key, join(qemuDir, 'server-key.pem')]);
  return {
    dir, qemuDir, caCert: ca.cert, otherCaCert: other.cert,
    client: (name) => ({ ...sign(openssl, dir, ca, name, `/CN=${name}`, clientExt), subject: `CN=${name}` }),
    foreignClient: (name) => sign(openssl, dir, other, name, `/CN=${name}`, clientExt),
  };
}
