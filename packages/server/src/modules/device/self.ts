import { type Certificate, type DeviceSelf, MusterError } from '@muster/contract';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { tunnelPortOfMachine } from '../claims/store.ts';
import { findMachineRow, loadMachines } from '../machines/store.ts';
import { machineAddress } from '../pools/store.ts';
import { deviceConfiguration } from '../profiles/machine.ts';

/**
 * A machine as it sees itself through the certificate it presented (GET /api/v1/device/self): what it was
 * allocated and what its profile gives it now. Read and rendered outside any transaction: rendering holds no
 * lock, and the secret it may make for a profile that came after the claim is written on its own.
 */
export async function deviceSelf(tx: Transactor, keyring: Keyring, certificate: Certificate): Promise<DeviceSelf> {
  const row = certificate.machine_id ? await findMachineRow(tx.db, certificate.machine_id) : undefined;
  if (!row) throw new MusterError('not_found', 'The machine of this certificate no longer exists');
  const [[machine], ipAddress, tunnelPort] = await Promise.all([
    loadMachines(tx.db, [row]),
    machineAddress(tx.db, row.id),
    tunnelPortOfMachine(tx.db, row.id),
  ]);
  const hwid = machine.identifiers.find((i) => i.kind === 'hwid')?.value ?? null;
  const { configuration } = await deviceConfiguration(tx, keyring, row, machine.labels, hwid, { fleet: machine.fleet });
  return {
    machine_id: machine.id,
    hostname: machine.hostname,
    fleet: machine.fleet,
    fleet_seq: machine.fleet_seq,
    state: machine.state,
    labels: machine.labels,
    profile: configuration.profile ?? null,
    ip_address: ipAddress,
    tunnel_port: tunnelPort,
    renew_after: certificate.renew_after,
    certificate: {
      serial: certificate.serial,
      subject: certificate.subject,
      not_before: certificate.not_before,
      not_after: certificate.not_after,
      revoked: certificate.revoked_at !== null,
    },
    files: configuration.files ?? [],
    agent: configuration.agent ?? null,
  };
}
