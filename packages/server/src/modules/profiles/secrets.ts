import { randomBytes } from 'node:crypto';
import type { ProfileSpec } from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import type { Tx } from '../../platform/db/transact.ts';
import { findMachineSecret, insertMachineSecretIfAbsent, saveMachineSecret } from './store.ts';

// A machine's secret ({{ secret }} in templates: seed 002's device password) is made once, sealed with the master
// key under the name machine_secret:<id> (docs/secrets.md), and the same on every rendering until rotated.

export const machineSecretName = (machineId: string) => `machine_secret:${machineId}`;

export function newSecret(spec: ProfileSpec): string {
  const bytes = randomBytes(spec.secret?.bytes ?? 16);
  return spec.secret?.encoding === 'base64url' ? bytes.toString('base64url') : bytes.toString('hex');
}

/**
 * The machine's secret, made (or, with `rotate`, made anew) and stored in the caller's transaction. `fresh`: the
 * machine is being made in this transaction, so there is none to read.
 */
export async function machineSecretInTx(
  tx: Pick<Tx, 'db'>,
  keyring: Keyring,
  machineId: string,
  spec: ProfileSpec,
  options: { rotate?: boolean; fresh?: boolean } = {},
): Promise<{ secret: string; created: boolean }> {
  const name = machineSecretName(machineId);
  const stored = options.fresh ? undefined : await findMachineSecret(tx.db, machineId);
  if (stored && !options.rotate) return { secret: keyring.open(stored.secret, name), created: false };
  const secret = newSecret(spec);
  if (options.rotate) {
    await saveMachineSecret(tx.db, machineId, keyring.seal(secret, name), now());
    return { secret, created: true };
  }
  // Renderings outside a transaction (GET /api/v1/device/self) may both find none: the first stored is the machine's.
  if (await insertMachineSecretIfAbsent(tx.db, machineId, keyring.seal(secret, name), now())) return { secret, created: true };
  const kept = await findMachineSecret(tx.db, machineId);
  if (!kept) throw new Error(`machine secret of ${machineId} neither stored nor found`);
  return { secret: keyring.open(kept.secret, name), created: false };
}

/** Whether any template of the spec uses the secret: only then is one made. */
export function usesSecret(spec: ProfileSpec): boolean {
  return /\bsecret\b/.test(JSON.stringify({ ...spec, description: '' }));
}
