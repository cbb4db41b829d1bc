import type { DeviceConfiguration, ProfileVersion } from '@muster/contract';
import type { IssuePolicy } from '../../platform/crypto/ca.ts';
import { now } from '../../platform/crypto/ids.ts';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import type { MachineRow } from '../../platform/db/schema.ts';
import type { Tx } from '../../platform/db/transact.ts';
import { findFleet } from '../fleets/store.ts';
import { findMachineRow, labelsOfMachine } from '../machines/store.ts';
import { contextOf } from './placement.ts';
import { issuePolicy, profileContexts, type RenderedProfile, redactedSecret, renderProfile } from './render.ts';
import { machineSecretInTx, machineSecretName, newSecret, usesSecret } from './secrets.ts';
import { findVersion, saveMachineSecret } from './store.ts';

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
    /** The secret to render with, made by the caller (a new machine's, saved in its transaction). */
    secret?: string;
  },
): Promise<MachineRendering | null> {
  const profile =
    options.profile ??
    (row.profile !== null && row.profile_version !== null ? await findVersion(tx.db, row.profile, row.profile_version) : null);
  if (!profile) return null;
  const fleet = options.fleet !== undefined ? options.fleet : row.fleet_id ? ((await findFleet(tx.db, row.fleet_id))?.name ?? null) : null;
  let secret = options.secret ?? redactedSecret;
  if (options.secret === undefined && !options.redact && keyring && usesSecret(profile.spec))
    secret = (await machineSecretInTx(tx, keyring, row.id, profile.spec, { fresh: options.created })).secret;
  const contexts = await profileContexts(
    profile.spec,
    { name: profile.name, version: profile.version },
    contextOf(row, { fleet, hwid: options.hwid, labels }),
    secret,
  );
  return { profile, rendered: await renderProfile(profile.spec, contexts) };
}

/**
 * What a device's profile gives it, rendered now: the configuration part of its answer (files hold the secret:
 * never stored as such) and the policy its certificate is issued under; null policy without a profile.
 */
export async function deviceConfiguration(
  tx: Pick<Tx, 'db'>,
  keyring: Keyring,
  row: MachineRow,
  labels: Record<string, string>,
  hwid: string | null,
  known: { profile?: ProfileVersion | null; fleet?: string | null; created?: boolean } = {},
): Promise<{ configuration: DeviceConfiguration; policy: IssuePolicy | null }> {
  if (row.profile === null) return { configuration: {}, policy: null };
  const profile = known.profile?.name === row.profile && known.profile.version === row.profile_version ? known.profile : undefined;
  const made = await renderForMachine(tx, keyring, row, labels, {
    redact: false,
    hwid,
    profile,
    fleet: known.fleet,
    created: known.created,
  });
  if (!made) return { configuration: {}, policy: null };
  return {
    configuration: {
      profile: { name: made.profile.name, version: made.profile.version },
      files: made.rendered.files,
      agent: made.rendered.agent,
    },
    policy: issuePolicy(made.rendered),
  };
}

/** What a new machine's profile gives it, rendered before its transaction opens; `save` keeps its secret in it. */
export interface PreparedDevice {
  configuration: DeviceConfiguration;
  policy: IssuePolicy | null;
  save(tx: Pick<Tx, 'db'>): Promise<void>;
}

/**
 * Renders a machine that does not exist yet, outside any transaction (a render may wait on the template workers,
 * and an open transaction would hold every writer meanwhile): its secret is made here and saved, sealed, by
 * `save` in the transaction that makes the machine.
 */
export async function prepareDevice(
  db: Pick<Tx, 'db'>,
  keyring: Keyring,
  row: MachineRow,
  labels: Record<string, string>,
  hwid: string | null,
  known: { profile: ProfileVersion | null; fleet: string | null },
): Promise<PreparedDevice> {
  const profile =
    known.profile?.name === row.profile && known.profile.version === row.profile_version
      ? known.profile
      : row.profile !== null && row.profile_version !== null
        ? await findVersion(db.db, row.profile, row.profile_version)
        : null;
  const secret = profile && usesSecret(profile.spec) ? newSecret(profile.spec) : null;
  const made = profile
    ? await renderForMachine(db, keyring, row, labels, {
        redact: false,
        hwid,
        profile,
        fleet: known.fleet,
        secret: secret ?? redactedSecret,
      })
    : null;
  return {
    configuration: made
      ? { profile: { name: made.profile.name, version: made.profile.version }, files: made.rendered.files, agent: made.rendered.agent }
      : {},
    policy: made ? issuePolicy(made.rendered) : null,
    save: async (tx) => {
      if (secret !== null) await saveMachineSecret(tx.db, row.id, keyring.seal(secret, machineSecretName(row.id)), now());
    },
  };
}

/** The certificate policy of the profile version a machine holds, for a renewal; null without a profile. */
export async function certificatePolicy(tx: Pick<Tx, 'db'>, row: MachineRow, labels: Record<string, string>): Promise<IssuePolicy | null> {
  const made = await renderForMachine(tx, null, row, labels, { redact: true });
  return made ? issuePolicy(made.rendered) : null;
}

/**
 * What is kept of a claim's answer for its retries: the certificate, nothing rendered. Files and agent commands may
 * hold the machine's secret, and the rest (host name, version, address) is read again so that it stays current.
 */
export interface KeptAnswer {
  certificate?: string;
  renew_after?: string;
}

export function keptAnswer(answer: KeptAnswer): string {
  return JSON.stringify({ certificate: answer.certificate, renew_after: answer.renew_after });
}

/** The certificate policy of a machine by id: its profile version rendered for reading; null without one. */
export async function certificatePolicyOf(tx: Pick<Tx, 'db'>, machineId: string): Promise<IssuePolicy | null> {
  const row = await findMachineRow(tx.db, machineId);
  if (!row || row.profile === null) return null;
  const labels = await labelsOfMachine(tx.db, machineId);
  return certificatePolicy(tx, row, labels);
}
