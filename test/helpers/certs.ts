/** Test certificates made with Debian's openssl, and what a TLS listener shows a new connection. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { connect } from 'node:tls';

/** A new self-signed certificate for 127.0.0.1 and its key, in `dir` as <name>-cert.pem and <name>-key.pem. */
export function makeCert(dir: string, name: string, openssl = '/usr/bin/openssl'): { cert: string; key: string } {
  const key = join(dir, `${name}-key.pem`);
  const cert = join(dir, `${name}-cert.pem`);
  execFileSync(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to `port` is shown. */
export function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' });
    sock.once('secureConnect', () => {
      const fp = sock.getPeerCertificate().fingerprint256;
      sock.end();
      resolve(fp);
    });
    sock.once('error', reject);
  });
}
