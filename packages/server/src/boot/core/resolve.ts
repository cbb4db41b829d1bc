import type { Identifier, Rule } from '@muster/contract';
import {
  findIdentifierOwners,
  findMachineRow,
  insertMachineWithEvent,
  newMachineRow,
  replaceLabels,
} from '../../modules/machines/store.ts';
import { nameBeforeTransaction, placedColumns, placementFor } from '../../modules/profiles/placement.ts';
import type { Arrival } from '../../modules/rules/match.ts';
import type { RuleService } from '../../modules/rules/service.ts';
import { now } from '../../platform/crypto/ids.ts';
import type { MachineRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { type Budget, MinuteBudget } from '../../platform/limits/budget.ts';

export type Identification =
  | { kind: 'machine'; machine: MachineRow; created: boolean; rule: Rule | null }
  | { kind: 'ignored'; rule: Rule }
  | { kind: 'refused'; rule: Rule }
  | { kind: 'unmatched' }
  | { kind: 'throttled'; retryAfter: number };

export interface BootArrival {
  claim: Arrival;
  identifiers: Identifier[];
  client: string;
}

/** What bounds the rows anonymous arrivals create: new machines, and refusal or unmatched events, per minute. */
export interface DiscoveryLimits {
  discoveries: Budget;
  reports: Budget;
}

/**
 * Finds the machine a front door sees, or places an unseen one by the rules: discovered (created at once, so
 * that its very first request is answered), ignored, or refused. Refusals and unmatched arrivals are events.
 * Past the server's discovery budget an unseen machine is throttled: nothing is created.
 */
export class BootDiscovery {
  readonly #tx: Transactor;
  readonly #rules: RuleService;
  readonly #limits: DiscoveryLimits;

  constructor(
    tx: Transactor,
    rules: RuleService,
    limits: DiscoveryLimits = { discoveries: new MinuteBudget(0), reports: new MinuteBudget(0) },
  ) {
    this.#tx = tx;
    this.#rules = rules;
    this.#limits = limits;
  }

  async #known(identifiers: Identifier[]): Promise<MachineRow | undefined> {
    if (identifiers.length === 0) return undefined;
    const owners = await findIdentifierOwners(this.#tx.db, identifiers);
    // Where identifiers name several machines, the serial decides: it is what the request path carried.
    const owner = owners.find((o) => o.kind === 'serial') ?? owners[0];
    return owner ? findMachineRow(this.#tx.db, owner.machine_id) : undefined;
  }

  /** The rule for a claim, whatever the machine: trees and scripts fall back to it. */
  ruleFor(claim: Arrival): Promise<Rule | null> {
    return this.#rules.select(claim);
  }

  /** What identify would do, without creating anything or recording an event. */
  async peek(arrival: BootArrival): Promise<Identification | { kind: 'pending'; rule: Rule }> {
    const known = await this.#known(arrival.identifiers);
    if (known) return { kind: 'machine', machine: known, created: false, rule: null };
    const rule = await this.#rules.select(arrival.claim);
    if (!rule) return { kind: 'unmatched' };
    if (rule.action === 'refuse') return { kind: 'refused', rule };
    if (rule.action === 'ignore') return { kind: 'ignored', rule };
    return { kind: 'pending', rule };
  }

  /**
   * Finds or places the machine. With discoverUnmatched (the iPXE door, as seed 003 registered every
   * unknown machine) an arrival that no rule matches is discovered too.
   */
  async identify(arrival: BootArrival, options: { discoverUnmatched?: boolean } = {}): Promise<Identification> {
    const peeked = await this.peek(arrival);
    if (peeked.kind === 'machine' || peeked.kind === 'ignored') return peeked;
    const discovers = peeked.kind === 'pending' || (peeked.kind === 'unmatched' && options.discoverUnmatched);
    if (discovers && !(await this.#limits.discoveries.admit(arrival.claim.door)))
      return { kind: 'throttled', retryAfter: this.#limits.discoveries.retryAfter() };
    if (peeked.kind === 'pending') {
      const { rule } = peeked;
      return this.create(arrival, { piTree: rule.pi_tree, labels: rule.labels, actor: 'device', rule });
    }
    if (peeked.kind === 'unmatched' && options.discoverUnmatched)
      return this.create(arrival, { piTree: null, labels: {}, actor: 'device', rule: null });
    const rule = peeked.kind === 'refused' ? peeked.rule : null;
    if (!(await this.#limits.reports.admit(arrival.claim.door))) return peeked;
    await this.#tx.run((tx) =>
      tx.emit({
        type: rule ? 'boot.refused' : 'boot.unmatched',
        actor: 'device',
        reason: rule ? `rule ${rule.name} refuses it` : 'no rule matches an unseen machine',
        data: { door: arrival.claim.door, client: arrival.client, identifiers: arrival.identifiers, rule: rule?.name ?? null },
      }),
    );
    return peeked;
  }

  /**
   * Creates a discovered machine at once, so that its very first request is answered. When a parallel
   * request of the same machine created it first, that machine is returned.
   */
  async create(
    arrival: BootArrival,
    placement: { piTree: string | null; labels: Record<string, string>; actor: string; rule: Rule | null },
  ): Promise<Identification & { kind: 'machine' }> {
    const placed = await placementFor({ db: this.#tx.db }, placement.rule);
    if (placement.piTree) placed.piTree = placement.piTree;
    Object.assign(placed.labels, placement.labels);
    const named = await nameBeforeTransaction(
      this.#tx,
      newMachineRow(arrival.identifiers, { state: 'discovered', last_seen_at: now() }),
      placed,
    );
    return this.#tx.run(async (tx) => {
      const owners = await findIdentifierOwners(tx.db, arrival.identifiers);
      if (owners.length > 0) {
        const machine = (await findMachineRow(tx.db, owners[0].machine_id)) as MachineRow;
        return { kind: 'machine', machine, created: false, rule: null };
      }
      const { columns } = await placedColumns(tx, named.machine, named.placement);
      const machine = { ...named.machine, ...columns };
      const { hostnameError } = named;
      const rule = placement.rule?.name ?? null;
      await insertMachineWithEvent(tx, machine, arrival.identifiers, {
        type: 'machine.discovered',
        machineId: machine.id,
        actor: placement.actor,
        reason: rule ? `rule ${rule}` : 'provisioned by hand',
        data: {
          door: arrival.claim.door,
          client: arrival.client,
          identifiers: arrival.identifiers,
          rule,
          pi_tree: machine.pi_tree,
          fleet: placed.fleet?.name ?? null,
          profile: machine.profile,
          profile_version: machine.profile_version,
          ...(hostnameError ? { hostname_error: hostnameError } : {}),
        },
      });
      if (Object.keys(placed.labels).length > 0) await replaceLabels(tx.db, machine.id, placed.labels);
      return { kind: 'machine', machine, created: true, rule: placement.rule };
    });
  }
}
