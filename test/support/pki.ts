import { readFileSync, writeFileSync } from 'node:fs';
import { deviceKeys, openssl } from './device-keys.ts';

// An operator's own PKI, made with the openssl CLI as an operator would: a root, the intermediates it signs, and
// the bad ones an import must refuse (not a CA, may not sign, expired, weak key, path too long).

export interface CaOptions {
  /** The CA that signs it; none for a self-signed root. */
  issuer?: string;
  /** openssl req's key arguments (ECDSA P-256 unless given). */
  keyArgs?: string[];
  basicConstraints?: string;
  keyUsage?: string;
  days?: string;
  /** Fixed validity, `YYYYMMDDHHMMSSZ` (signed with `openssl ca`, since `-days` cannot go back in time). */
  dates?: { start: string; end: string };
}

export interface Pki {
  file(name: string): string;
  read(name: string): string;
  /** Makes NAME.key and NAME.pem. */
  ca(name: string, options?: CaOptions): void;
  /** NAME.key again in the traditional form openssl writes for its kind (SEC1 for EC, PKCS#1 for RSA), as NAME.traditional.key. */
  traditionalKey(name: string, kind: 'ec' | 'rsa'): string;
}

export function testPki(label: string): Pki {
  const { file } = deviceKeys(label);
  const read = (name: string) => readFileSync(file(name), 'utf8');
  let signed = 0;

  function sign(name: string, issuer: string, config: string, options: CaOptions): void {
    const csr = file(`${name}.csr`);
    const keyArgs = options.keyArgs ?? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    openssl('req', '-new', ...keyArgs, '-nodes', '-keyout', file(`${name}.key`), '-out', csr, '-subj', `/CN=${name}`, '-config', config);
    if (!options.dates) {
      const days = options.days ?? '365';
      openssl(
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        file(`${issuer}.pem`),
        '-CAkey',
        file(`${issuer}.key`),
        '-CAcreateserial',
        '-out',
        file(`${name}.pem`),
        '-days',
        days,
        '-extfile',
        config,
        '-extensions',
        'v3',
      );
      return;
    }
    const database = file(`index-${++signed}.txt`);
    writeFileSync(database, '');
    const caConfig = file(`${name}-ca.cnf`);
    writeFileSync(
      caConfig,
      `${readFileSync(config, 'utf8')}[signer]\ndatabase=${database}\nnew_certs_dir=${file('.')}\nserial=${file(`serial-${signed}`)}\ndefault_md=sha256\npolicy=any\n[any]\ncommonName=supplied\n`,
    );
    openssl(
      'ca',
      '-batch',
      '-config',
      caConfig,
      '-name',
      'signer',
      '-create_serial',
      '-cert',
      file(`${issuer}.pem`),
      '-keyfile',
      file(`${issuer}.key`),
      '-in',
      csr,
      '-out',
      file(`${name}.pem`),
      '-startdate',
      options.dates.start,
      '-enddate',
      options.dates.end,
      '-extensions',
      'v3',
      '-notext',
    );
  }

  return {
    file,
    read,
    ca(name, options = {}) {
      const config = file(`${name}.cnf`);
      const basicConstraints = options.basicConstraints ?? 'critical,CA:TRUE';
      const keyUsage = options.keyUsage ?? 'critical,keyCertSign,cRLSign,digitalSignature';
      writeFileSync(
        config,
        `[req]\ndistinguished_name=dn\n[dn]\n[v3]\nbasicConstraints=${basicConstraints}\nkeyUsage=${keyUsage}\nsubjectKeyIdentifier=hash\n`,
      );
      if (options.issuer) return sign(name, options.issuer, config, options);
      const keyArgs = options.keyArgs ?? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
      openssl(
        'req',
        '-x509',
        ...keyArgs,
        '-nodes',
        '-keyout',
        file(`${name}.key`),
        '-out',
        file(`${name}.pem`),
        '-subj',
        `/CN=${name}`,
        '-days',
        options.days ?? '365',
        '-config',
        config,
        '-extensions',
        'v3',
      );
    },
    traditionalKey(name, kind) {
      const out = file(`${name}.traditional.key`);
      if (kind === 'ec') openssl('ec', '-in', file(`${name}.key`), '-out', out);
      else openssl('rsa', '-in', file(`${name}.key`), '-traditional', '-out', out);
      return read(`${name}.traditional.key`);
    },
  };
}
