import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testTool } from '../tools/list.ts';

// What a device does before it claims: makes its own key and a CSR with the openssl CLI. The subject is the
// device's to choose ("CN=admin"), and muster must ignore it.

/** The openssl CLI, its output as text. */
export function openssl(...args: string[]): string {
  return execFileSync(testTool('openssl').path, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A folder of device keys, CSRs and certificates for one test file. */
export function deviceKeys(label: string) {
  const dir = mkdtempSync(join(tmpdir(), `muster-${label}-`));
  const file = (name: string) => join(dir, name);
  return {
    file,
    /**
     * Proof of possession for a claim's retry (docs/identity.md), as a device makes it with the openssl CLI: the
     * signature of NAME.key over "muster-claim-v1\n<hwid>\n<time>", base64.
     */
    proof(name: string, hwid: string, time = new Date().toISOString()): { time: string; signature: string } {
      const signature = execFileSync(testTool('openssl').path, ['dgst', '-sha256', '-sign', file(`${name}.key`)], {
        input: `muster-claim-v1\n${hwid}\n${time}`,
      });
      return { time, signature: signature.toString('base64') };
    },
    /** A new key (ECDSA P-256 unless `keyArgs` say otherwise) in NAME.key, and its CSR, returned as PEM. */
    csr(name: string, keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']): string {
      openssl(
        'req',
        '-new',
        ...keyArgs,
        '-nodes',
        '-keyout',
        file(`${name}.key`),
        '-subj',
        '/CN=admin/O=not-muster',
        '-out',
        file(`${name}.csr`),
      );
      return readFileSync(file(`${name}.csr`), 'utf8');
    },
  };
}
