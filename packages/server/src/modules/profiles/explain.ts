import { type ExplainRequest, type Explanation, MusterError, normalizeIdentifier } from '@muster/contract';
import type { MachineRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { findFleet } from '../fleets/store.ts';
import { findMachineRow, labelsOfMachine, newMachineRow } from '../machines/store.ts';
import { type Arrival, explainRules } from '../rules/match.ts';
import { loadRules } from '../rules/store.ts';
import { renderForMachine } from './machine.ts';
import { contextOf, placementFor } from './placement.ts';
import { publicContext, renderHostname } from './render.ts';
import { findProfileRow, firstDoorOf } from './store.ts';

type Door = Explanation['door'];

/**
 * "What will this machine get, and why" (docs/profiles.md): every rule in order with why it did or did not match,
 * the profile and version, and everything rendered, with the secret redacted. It reads, and changes nothing.
 */
export class ExplainService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
  }

  /** A machine that exists: its identifiers, facts and labels at the door it came through (or `door`). */
  async machine(id: string, door?: Door): Promise<Explanation> {
    const row = await findMachineRow(this.#tx.db, id);
    if (!row) throw new MusterError('not_found', `No machine ${id}`);
    const labels = await labelsOfMachine(this.#tx.db, id);
    const chosenDoor = door ?? ((await firstDoorOf(this.#tx.db, id)) as Door | null) ?? 'enroll';
    const arrival: Arrival = {
      door: chosenDoor,
      serial: row.service_tag ?? undefined,
      mac: row.mac_address ?? undefined,
      facts: JSON.parse(row.facts) as Record<string, unknown>,
      labels,
    };
    return this.#explain(row, arrival, labels);
  }

  /** A machine that does not exist yet, from what a door would see (`muster explain --facts FILE`). */
  async arrival(input: ExplainRequest): Promise<Explanation> {
    const serial = input.serial ? normalizeIdentifier('serial', input.serial)?.value : undefined;
    const mac = input.mac ? normalizeIdentifier('mac', input.mac)?.value : undefined;
    if (input.serial && !serial) throw new MusterError('invalid_identifier', `serial "${input.serial}" identifies nothing`);
    if (input.mac && !mac) throw new MusterError('invalid_identifier', `mac "${input.mac}" is not a MAC address`);
    const labels = input.labels ?? {};
    const arrival: Arrival = { door: input.door ?? 'enroll', serial, mac, facts: input.facts ?? {}, labels };
    const identifiers = [
      ...(serial ? [{ kind: 'serial' as const, value: serial }] : []),
      ...(mac ? [{ kind: 'mac' as const, value: mac }] : []),
    ];
    const row = newMachineRow(identifiers, { state: 'discovered', facts: JSON.stringify(input.facts ?? {}) });
    return this.#explain({ ...row, id: '' }, arrival, labels, input.hwid ?? null);
  }

  async #explain(row: MachineRow, arrival: Arrival, labels: Record<string, string>, hwid: string | null = null): Promise<Explanation> {
    const db = this.#tx.db;
    const explained = explainRules(await loadRules(db), arrival);
    const chosen = explained.find((e) => e.chosen)?.rule ?? null;
    const placement = await placementFor({ db }, chosen);
    const errors: string[] = [];
    const exists = row.id !== '';
    const held = exists && row.profile !== null;
    const profileName = held ? row.profile : (placement.profile?.name ?? null);
    const current = profileName ? await findProfileRow(db, profileName) : undefined;
    let rendered: Explanation['rendered'] = null;
    let version: number | null = null;
    const fleet = row.fleet_id ? ((await findFleet(db, row.fleet_id)) ?? null) : placement.fleet;
    // A machine not yet in a fleet is shown with the number it would take next.
    const seq = row.fleet_seq ?? (fleet && !row.fleet_id ? fleet.next_seq : null);
    const shown = { ...row, fleet_seq: seq, fleet_id: fleet?.id ?? null };
    const allLabels = { ...placement.labels, ...labels };
    try {
      const heldVersion = held ? undefined : (placement.profile ?? undefined);
      if (!held && heldVersion && !row.hostname) {
        const context = await publicContext(
          heldVersion.spec,
          { name: heldVersion.name, version: heldVersion.version },
          contextOf(shown, { fleet: fleet?.name ?? null, hwid, labels: allLabels }),
        );
        shown.hostname = (await renderHostname(heldVersion.spec, context)) ?? '';
      }
      if (!shown.hostname && fleet && seq !== null) shown.hostname = `${fleet.name}-${seq}`;
      const made = await renderForMachine({ db }, null, shown, allLabels, { redact: true, hwid, profile: heldVersion });
      if (made) {
        version = made.profile.version;
        rendered = { ...made.rendered, certificate: { ...made.rendered.certificate }, boot: { ...made.rendered.boot } };
      }
    } catch (error) {
      errors.push((error as Error).message);
    }
    return {
      machine_id: exists ? row.id : null,
      door: arrival.door,
      rules: explained.map((e) => ({
        name: e.rule.name,
        priority: e.rule.priority,
        matched: e.matched,
        chosen: e.chosen,
        reasons: e.reasons,
        action: e.rule.action,
        sets: Object.fromEntries(
          Object.entries({
            fleet: e.rule.fleet,
            profile: e.rule.profile,
            labels: Object.keys(e.rule.labels).length ? e.rule.labels : null,
            approval: e.rule.approval,
            pi_tree: e.rule.pi_tree,
          }).filter(([, v]) => v !== null),
        ),
      })),
      rule: chosen?.name ?? null,
      action: chosen?.action ?? (arrival.door === 'ipxe' || arrival.door === 'enroll' ? 'discover' : 'none'),
      fleet: fleet?.name ?? null,
      labels: allLabels,
      approval: placement.approval,
      profile:
        profileName && current
          ? {
              name: profileName,
              version: version ?? (held ? (row.profile_version as number) : current.version),
              current_version: current.version,
              from: held ? 'machine' : 'rule',
            }
          : null,
      rendered,
      errors,
    };
  }
}
