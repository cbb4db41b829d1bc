import { readFileSync, writeFileSync } from 'node:fs';
import {
  type CaInfo,
  type CaPolicy,
  type CaPolicySet,
  type Certificate,
  extendedKeyUsages,
  keyUsages,
  MusterError,
} from '@muster/contract';
import { Command, InvalidArgumentError } from 'commander';
import { parse as parseYaml } from 'yaml';
import { collect } from '../arguments.ts';
import { segment } from '../client.ts';
import { formatTime, printJson, printNote, printText, renderFields, renderTable } from '../output.ts';
import { openSession } from '../session.ts';

// muster's certificate authority (docs/identity.md): its certificate and CRL are public; revoking needs an operator;
// the CA policy (what any certificate may hold) is the admin's.

/** One of `allowed`, as the option's value; anything else is a usage error naming the choices. */
const oneOf =
  <T extends string>(allowed: readonly T[]) =>
  (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${allowed.join(', ')}`);
    return value as T;
  };

function parseValidity(value: string): string {
  if (!/^[0-9]{1,6}[smhd]$/.test(value)) throw new InvalidArgumentError('expected a duration like 90d, 12h or 30m');
  return value;
}

function policyFields(p: CaPolicy): string {
  const none = (list: string[], empty: string) => (list.length ? list.join(', ') : empty);
  return renderFields([
    ['extended key usages', p.extended_key_usages.join(', ')],
    ['key usages', p.key_usages.join(', ')],
    [
      'dns suffixes',
      none(
        p.dns_suffixes.map((s) => (s.startsWith('.') ? s : `.${s}`)),
        'any name not forbidden',
      ),
    ],
    ['forbidden names', [...p.always_forbidden_names, ...p.forbidden_names].join(', ')],
    ['ip ranges', none(p.ip_ranges, "none but the machine's own pool address")],
    ['wildcards', p.allow_wildcards ? 'allowed' : 'not allowed'],
    ['max validity', p.max_validity ?? `${Math.round(p.max_validity_seconds / 86_400)}d (the certificate_validity setting)`],
    ['updated', p.updated_at ? `${formatTime(p.updated_at)} by ${p.updated_by}` : 'never: the defaults hold'],
  ]);
}

interface PolicyOptions {
  file?: string;
  eku?: CaPolicySet['extended_key_usages'];
  keyUsage?: CaPolicySet['key_usages'];
  dnsSuffix?: string[];
  forbid?: string[];
  ipRange?: string[];
  allowWildcards?: boolean;
  maxValidity?: string;
}

/** The policy to set: from a YAML or JSON file, or from the options, never both. */
function policyBody(options: PolicyOptions): CaPolicySet {
  const { file, ...flags } = options;
  if (file) {
    if (Object.keys(flags).length)
      throw new MusterError('bad_request', '--file holds the whole policy: give either the file or the options, not both');
    let body: unknown;
    try {
      body = parseYaml(readFileSync(file, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code) throw error;
      throw new MusterError('bad_request', `${file}: ${(error as Error).message.split('\n')[0]}`);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw new MusterError('bad_request', `${file}: expected the policy as a mapping (extended_key_usages: [clientAuth], …)`);
    return body as CaPolicySet;
  }
  return {
    ...(flags.eku ? { extended_key_usages: [...new Set(flags.eku)] } : {}),
    ...(flags.keyUsage ? { key_usages: [...new Set(flags.keyUsage)] } : {}),
    ...(flags.dnsSuffix ? { dns_suffixes: [...new Set(flags.dnsSuffix)] } : {}),
    ...(flags.forbid ? { forbidden_names: [...new Set(flags.forbid)] } : {}),
    ...(flags.ipRange ? { ip_ranges: [...new Set(flags.ipRange)] } : {}),
    ...(flags.allowWildcards ? { allow_wildcards: true } : {}),
    ...(flags.maxValidity ? { max_validity: flags.maxValidity } : {}),
  };
}

function policyCommand(): Command {
  const policy = new Command('policy')
    .description('the CA policy: what any certificate muster issues may hold; profiles may narrow it, never widen it')
    .addHelpText('after', '\nExamples:\n  muster ca policy\n  muster ca policy set --dns-suffix .fleet.example --max-validity 90d')
    .action(async (_options: unknown, command: Command) => {
      const session = await openSession(command);
      const current = await session.api.get<CaPolicy>('/ca/policy');
      if (session.json) return printJson(current);
      printText(policyFields(current));
    });

  policy
    .command('set')
    .description('replace the CA policy whole (what is not given takes its default); admin')
    .option(
      '--eku <usage>',
      `an extended key usage certificates may have (${extendedKeyUsages.join(', ')}); repeat for more`,
      collect(oneOf(extendedKeyUsages)),
    )
    .option(
      '--key-usage <usage>',
      `a key usage certificates may have (${keyUsages.join(', ')}); repeat for more`,
      collect(oneOf(keyUsages)),
    )
    .option(
      '--dns-suffix <suffix>',
      'DNS names must be under it (.fleet.example); repeat for more; none: any name not forbidden',
      collect(String),
    )
    .option('--forbid <name>', 'a name no certificate may hold, nor any name under it; repeat for more', collect(String))
    .option('--ip-range <cidr>', "IP SANs allowed besides the machine's own pool address (10.0.0.0/8); repeat for more", collect(String))
    .option('--allow-wildcards', 'allow wildcard DNS names (*.fleet.example)')
    .option('--max-validity <duration>', 'the longest validity (90d); default: the certificate_validity setting', parseValidity)
    .option('--file <file>', 'the whole policy from a YAML or JSON file (the fields of GET /api/v1/ca/policy that can be set)')
    .addHelpText(
      'after',
      [
        '',
        'Defaults: clientAuth only; all key usages; any DNS name but localhost and the host of public_url; no IP SAN',
        "but the machine's own pool address; no wildcards; longest validity the certificate_validity setting.",
        '',
        'Examples:',
        '  muster ca policy set --eku clientAuth --dns-suffix .fleet.example --ip-range 10.0.0.0/8 --max-validity 90d',
        '  muster ca policy set --file ca-policy.yaml',
        '  muster ca policy set            # back to the defaults',
      ].join('\n'),
    )
    .action(async (options: PolicyOptions, command: Command) => {
      const body = policyBody(options);
      const session = await openSession(command);
      const updated = await session.api.put<CaPolicy>('/ca/policy', body);
      if (session.json) return printJson(updated);
      printText(policyFields(updated));
      printNote('Profiles outside it are refused at apply; certificates outside it at issuance (claims, approval, renewal).');
    });
  return policy;
}

export function caCommand(): Command {
  const ca = new Command('ca').description('muster’s certificate authority: its certificate, the CRL, revocation, its policy');
  ca.addCommand(policyCommand());

  ca.command('show')
    .description('the CA certificate’s subject, validity and SHA-256 fingerprint')
    .addHelpText('after', '\nExample:\n  muster ca show')
    .action(async (_options: unknown, command: Command) => {
      const session = await openSession(command);
      const info = await session.api.get<CaInfo>('/ca');
      if (session.json) return printJson(info);
      printText(
        renderFields([
          ['subject', info.subject],
          ['fingerprint', `SHA256:${info.fingerprint_sha256}`],
          ['not before', formatTime(info.not_before)],
          ['not after', formatTime(info.not_after)],
        ]),
      );
    });

  ca.command('import')
    .description('make an intermediate CA (signed by your own root) the one muster issues from; admin')
    .requiredOption('--cert <file>', 'the intermediate CA certificate, PEM')
    .requiredOption('--key <file>', 'its private key, PEM (PKCS#8, SEC1 or PKCS#1; ECDSA P-256/P-384 or RSA ≥ 2048)')
    .option('--chain <file>', 'the certificates above it, its issuer first, PEM')
    .addHelpText('after', '\nExample:\n  muster ca import --cert intermediate.pem --key intermediate.key --chain root.pem')
    .action(async (options: { cert: string; key: string; chain?: string }, command: Command) => {
      const body = {
        certificate: readFileSync(options.cert, 'utf8'),
        key: readFileSync(options.key, 'utf8'),
        ...(options.chain ? { chain: readFileSync(options.chain, 'utf8') } : {}),
      };
      const session = await openSession(command);
      const info = await session.api.put<CaInfo>('/ca', body);
      if (session.json) return printJson(info);
      printText(`muster now issues from ${info.subject} (SHA-256 ${info.fingerprint_sha256})`);
      printNote('Devices renew to get certificates from it: after a restart, servers with --tls-listen trust the new chain only.');
    });

  ca.command('export')
    .description('the CA certificate and the chain above it (PEM) for devices and TLS clients to trust; with --crl, the CRL instead')
    .option('--crl', 'the certificate revocation list (PEM) instead')
    .option('--out <file>', 'write it to a file instead of standard output')
    .addHelpText('after', '\nExample:\n  muster ca export --out muster-ca.pem\n  muster ca export --crl --out muster.crl')
    .action(async (options: { crl?: boolean; out?: string }, command: Command) => {
      const session = await openSession(command);
      const pem = options.crl
        ? await session.api.text('/ca/crl')
        : (await session.api.get<CaInfo>('/ca')).chain.map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`)).join('');
      if (options.out) writeFileSync(options.out, pem);
      else process.stdout.write(pem);
    });

  ca.command('certs')
    .description('the certificates issued to a machine')
    .argument('<machine>', 'machine id, hostname or identifier')
    .addHelpText('after', '\nExample:\n  muster ca certs pis-7')
    .action(async (machine: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const certs = await session.api.get<Certificate[]>(`/machines/${segment(machine)}/certificates`);
      if (session.json) return printJson(certs);
      printText(
        renderTable(
          ['serial', 'subject', 'not after', 'revoked', 'reason'],
          certs.map((c) => [c.serial, c.subject, formatTime(c.not_after), formatTime(c.revoked_at), c.revoke_reason]),
        ),
      );
    });

  ca.command('revoke')
    .description('revoke a certificate by serial: the CRL lists it from now on')
    .argument('<serial>', 'the certificate’s serial, hex')
    .option('--reason <text>', 'why, for the audit log')
    .addHelpText('after', '\nExample:\n  muster ca revoke 5f0c2a9e41d77b03 --reason "device stolen"')
    .action(async (serial: string, options: { reason?: string }, command: Command) => {
      const session = await openSession(command);
      const cert = await session.api.post<Certificate>(
        `/certificates/${segment(serial)}/revoke`,
        options.reason ? { reason: options.reason } : {},
      );
      if (session.json) return printJson(cert);
      printText(`revoked ${cert.serial} (${cert.subject}) at ${formatTime(cert.revoked_at)}`);
    });

  return ca;
}
