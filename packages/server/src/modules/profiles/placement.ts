import type { ProfileVersion, Rule } from '@muster/contract';
import type { FleetRow, MachineRow } from '../../platform/db/schema.ts';
import type { Tx } from '../../platform/db/transact.ts';
import { findFleet } from '../fleets/store.ts';
import { allocateFleetSeq } from '../machines/store.ts';
import { type MachineContext, publicContext, renderHostname } from './render.ts';
import { currentVersion } from './store.ts';

// Where a new machine goes (docs/profiles.md): the rule that matched at its door, over what the door itself binds
// (an enrollment token's fleet, profile and labels; a one-time password's fleet). The door's binding wins where it
// gives one: a token bound to a fleet is a limit, not a suggestion.

export interface Placement {
  rule: Rule | null;
  fleet: FleetRow | null;
  profile: ProfileVersion | null;
  labels: Record<string, string>;
  piTree: string | null;
  approval: 'auto' | 'pending' | null;
}

export interface Binding {
  fleetId?: string | null;
  profile?: string | null;
  labels?: Record<string, string>;
}

/** The placement of a rule and a door's binding, read inside the caller's transaction. */
export async function placementFor(tx: Pick<Tx, 'db'>, rule: Rule | null, binding: Binding = {}): Promise<Placement> {
  const fleetRef = binding.fleetId ?? rule?.fleet ?? null;
  const profileName = binding.profile ?? rule?.profile ?? null;
  const fleet = fleetRef ? ((await findFleet(tx.db, fleetRef)) ?? null) : null;
  const profile = profileName ? await currentVersion(tx.db, profileName) : null;
  return {
    rule,
    fleet,
    profile,
    labels: { ...(rule?.labels ?? {}), ...(binding.labels ?? {}) },
    piTree: rule?.pi_tree ?? profile?.spec.boot?.pi_tree ?? null,
    approval: rule?.approval ?? null,
  };
}

/** What templates see of a machine row, with its labels and facts. */
export function contextOf(
  row: Pick<MachineRow, 'id' | 'hostname' | 'service_tag' | 'mac_address' | 'fleet_seq' | 'facts'>,
  extra: { fleet: string | null; hwid?: string | null; labels: Record<string, string> },
): MachineContext {
  return {
    machine_id: row.id,
    hostname: row.hostname || null,
    serial: row.service_tag,
    mac: row.mac_address,
    hwid: extra.hwid ?? null,
    fleet: extra.fleet,
    seq: row.fleet_seq,
    labels: extra.labels,
    facts: JSON.parse(row.facts),
  };
}

/**
 * The columns a placement sets on a machine: its fleet number (taken now, never reused), the profile's host name
 * or else FLEET-N, the profile version, the Pi tree. What the machine has already (a fleet, a host name) is kept.
 */
export async function placedColumns(
  tx: Pick<Tx, 'db'>,
  row: MachineRow,
  placement: Placement,
  extra: { hwid?: string | null } = {},
): Promise<{ columns: Partial<MachineRow>; hostnameError: string | null }> {
  const columns: Partial<MachineRow> = {};
  let fleetName: string | null = null;
  if (placement.fleet && row.fleet_id === null) {
    columns.fleet_id = placement.fleet.id;
    columns.fleet_seq = await allocateFleetSeq(tx.db, placement.fleet.id);
    fleetName = placement.fleet.name;
  }
  if (placement.profile && row.profile === null) {
    columns.profile = placement.profile.name;
    columns.profile_version = placement.profile.version;
  }
  if (placement.piTree && row.pi_tree === null) columns.pi_tree = placement.piTree;
  let hostnameError: string | null = null;
  if (!row.hostname) {
    const merged = { ...row, ...columns };
    const profile = placement.profile;
    if (profile?.spec.hostname) {
      try {
        const context = await publicContext(
          profile.spec,
          { name: profile.name, version: profile.version },
          contextOf(merged, { fleet: fleetName ?? placement.fleet?.name ?? null, hwid: extra.hwid, labels: placement.labels }),
        );
        columns.hostname = (await renderHostname(profile.spec, context)) ?? '';
      } catch (error) {
        hostnameError = (error as Error).message;
      }
    }
    if (!columns.hostname && fleetName && merged.fleet_seq !== null) columns.hostname = `${fleetName}-${merged.fleet_seq}`;
  }
  return { columns, hostnameError };
}

/**
 * A machine placed with its profile's host name rendered now, before the transaction that writes it opens: a template
 * may take up to the render time limit, and on SQLite an open transaction would stall every writer meanwhile. The
 * fleet number the name may use is taken first, in a statement of its own (a transaction that then fails leaves a
 * gap; numbers are never reused anyway). The placement returned has the template left out, so that placing the
 * machine again inside the transaction renders nothing. Without a host name template nothing happens here.
 */
export async function nameBeforeTransaction(
  db: Pick<Tx, 'db'>,
  row: MachineRow,
  placement: Placement,
  extra: { hwid?: string | null } = {},
): Promise<{ machine: MachineRow; placement: Placement; hostnameError: string | null }> {
  if (!placement.profile?.spec.hostname || row.hostname) return { machine: row, placement, hostnameError: null };
  const { columns, hostnameError } = await placedColumns(db, row, placement, extra);
  const spec = { ...placement.profile.spec };
  delete spec.hostname;
  return { machine: { ...row, ...columns }, placement: { ...placement, profile: { ...placement.profile, spec } }, hostnameError };
}
