import type { DeviceConfiguration, ProfileVersion } from '@muster/contract';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import type { MachineRow } from '../../platform/db/schema.ts';
import type { Tx } from '../../platform/db/transact.ts';
import { findFleet } from '../fleets/store.ts';
import { contextOf } from './placement.ts';
import { profileContext, type RenderedProfile, redactedSecret, renderProfile } from './render.ts';
import { machineSecretInTx, usesSecret } from './secrets.ts';
import { findVersion } from './store.ts';

export interface MachineRendering {
  profile: ProfileVersion;
  rendered: RenderedProfile;
}

/**
 * Renders the profile version a machine holds, for the machine itself (with its secret, made on first use) or,
 * with `redact`, for reading (explain): the secret shows as "(secret)" and none is made.
 */
export async function renderForMachine(
  tx: Pick<Tx, 'db'>,
  keyring: Keyring | null,
  row: MachineRow,
  labels: Record<string, string>,
  options: {
    redact: boolean;
    hwid?: string | null;
    /** The version, when the caller has it: else the one the machine holds is read. */
    profile?: ProfileVersion;
    /** The fleet's name, when the caller knows it. */
    fleet?: string | null;
    /** The machine is being made now, so it has no secret yet. */
    created?: boolean;
  },
): Promise<MachineRendering | null> {
  const profile =
    options.profile ??
    (row.profile !== null && row.profile_version !== null ? await findVersion(tx.db, row.profile, row.profile_version) : null);
  if (!profile) return null;
  const fleet = options.fleet !== undefined ? options.fleet : row.fleet_id ? ((await findFleet(tx.db, row.fleet_id))?.name ?? null) : null;
  let secret = redactedSecret;
  if (!options.redact && keyring && usesSecret(profile.spec))
    secret = (await machineSecretInTx(tx, keyring, row.id, profile.spec, { fresh: options.created })).secret;
  const context = await profileContext(
    profile.spec,
    { name: profile.name, version: profile.version },
    contextOf(row, { fleet, hwid: options.hwid, labels }),
    secret,
  );
  return { profile, rendered: await renderProfile(profile.spec, context) };
}

/** The configuration part a device's profile gives it, rendered now (files hold the secret: never stored as such). */
export async function deviceConfiguration(
  tx: Pick<Tx, 'db'>,
  keyring: Keyring,
  row: MachineRow,
  labels: Record<string, string>,
  hwid: string | null,
  known: { profile?: ProfileVersion | null; fleet?: string | null; created?: boolean } = {},
): Promise<DeviceConfiguration> {
  if (row.profile === null) return {};
  const profile = known.profile?.name === row.profile && known.profile.version === row.profile_version ? known.profile : undefined;
  const made = await renderForMachine(tx, keyring, row, labels, {
    redact: false,
    hwid,
    profile,
    fleet: known.fleet,
    created: known.created,
  });
  if (!made) return {};
  return { profile: { name: made.profile.name, version: made.profile.version }, files: made.rendered.files, agent: made.rendered.agent };
}

/** An answer as it is kept for retries: without the rendered files, which may hold the machine's secret. */
export function storableAnswer<T extends { configuration?: DeviceConfiguration }>(answer: T): string {
  if (!answer.configuration?.files) return JSON.stringify(answer);
  const { files: _, ...configuration } = answer.configuration;
  return JSON.stringify({ ...answer, configuration });
}
