// A throwaway TLS key and self-signed certificate for a test server on given IP addresses, made by Debian's openssl
// (node:crypto can sign nothing): the certificate is its own CA, so a client given it as ca.crt verifies the server.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyAndCertificate {
  /** PEM. */
  key: string;
  cert: string;
}

export function selfSignedCertificate(commonName: string, ips: readonly string[]): KeyAndCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-cert-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${commonName}`,
      '-addext', `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
