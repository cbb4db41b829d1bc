import { readFileSync, writeFileSync } from 'node:fs';
import type { CaInfo, Certificate } from '@muster/contract';
import { Command } from 'commander';
import { segment } from '../client.ts';
import { formatTime, printJson, printNote, printText, renderFields, renderTable } from '../output.ts';
import { openSession } from '../session.ts';

// muster's certificate authority (docs/identity.md): its certificate and CRL are public; revoking needs an operator.

export function caCommand(): Command {
  const ca = new Command('ca').description('muster’s certificate authority: its certificate, the CRL, revocation');

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
