import { MusterError, type Rule, type RulePut } from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import type { EventBus } from '../../platform/db/event-bus.ts';
import type { RuleRow } from '../../platform/db/schema.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import { type Arrival, compareRules, normalizeMacPrefix, selectRule } from './match.ts';
import { deleteRule, findRuleRow, fleetExists, loadRules, piTreeExists, profileExists, ruleFromRow, upsertRule } from './store.ts';

/** Writes a rule inside a transaction; the Pi tree it names must exist. */
export async function putRuleInTx(tx: Tx, actor: string, name: string, input: RulePut): Promise<Rule> {
  const missing: { path: string; message: string }[] = [];
  if (input.pi_tree && !(await piTreeExists(tx.db, input.pi_tree)))
    missing.push({ path: '/pi_tree', message: `no Pi tree named ${input.pi_tree}` });
  if (input.fleet && !(await fleetExists(tx.db, input.fleet))) missing.push({ path: '/fleet', message: `no fleet named ${input.fleet}` });
  if (input.profile && !(await profileExists(tx.db, input.profile)))
    missing.push({ path: '/profile', message: `no profile named ${input.profile}` });
  if (missing.length)
    throw new MusterError('validation_failed', `The rule names what does not exist: ${missing.map((m) => m.message).join('; ')}`, {
      errors: missing,
    });
  const time = now();
  const existing = await findRuleRow(tx.db, name);
  const row: RuleRow = {
    name,
    priority: input.priority ?? 100,
    door: input.door ?? 'any',
    serial_pattern: input.serial_pattern ?? null,
    mac_prefix: input.mac_prefix ? normalizeMacPrefix(input.mac_prefix) : null,
    action: input.action,
    pi_tree: input.pi_tree ?? null,
    labels: JSON.stringify(input.labels ?? {}),
    facts: JSON.stringify(input.facts ?? {}),
    match_labels: JSON.stringify(input.match_labels ?? {}),
    fleet: input.fleet ?? null,
    profile: input.profile ?? null,
    approval: input.approval ?? null,
    created_at: existing?.created_at ?? time,
    updated_at: time,
  };
  await upsertRule(tx.db, row);
  await tx.emit({ type: existing ? 'rule.updated' : 'rule.created', actor, data: { rule: name } });
  return ruleFromRow(row);
}

const rulesMaxAgeMs = 1000;

/**
 * Rules place machines at every door (docs/profiles.md): discover, ignore or refuse them, and set their fleet,
 * profile, labels, Pi tree and, for claims, whether they are approved at once.
 */
export class RuleService {
  readonly #tx: Transactor;
  /** Rules as last read: every door reads them on every arrival, and they change seldom (docs/profiles.md). */
  #cache: { rules: Rule[]; at: number } | null = null;

  /** `bus`: committed events, this server's and (on PostgreSQL) the other replicas'; a rule or Pi tree change drops the cache. */
  constructor(tx: Transactor, bus?: EventBus) {
    this.#tx = tx;
    bus?.subscribe((event) => {
      if (event.type.startsWith('rule.') || event.type.startsWith('pi_tree.')) this.#cache = null;
    });
  }

  async list(): Promise<Rule[]> {
    return (await loadRules(this.#tx.db)).sort(compareRules);
  }

  async get(name: string): Promise<Rule> {
    const row = await findRuleRow(this.#tx.db, name);
    if (!row) throw new MusterError('not_found', `No rule named ${name}`);
    return ruleFromRow(row);
  }

  async put(actor: string, name: string, input: RulePut): Promise<Rule> {
    this.#cache = null;
    const rule = await this.#tx.run((tx) => putRuleInTx(tx, actor, name, input), 1);
    this.#cache = null;
    return rule;
  }

  async delete(actor: string, name: string): Promise<void> {
    this.#cache = null;
    await this.#tx.run(async (tx) => {
      if (!(await deleteRule(tx.db, name))) throw new MusterError('not_found', `No rule named ${name}`);
      await tx.emit({ type: 'rule.deleted', actor, data: { rule: name } });
    }, 1);
    this.#cache = null;
  }

  /**
   * A claim a rule refuses: recorded as an event (door, rule and whatever `data` says of the device), and the
   * error to answer, the same whatever refused it.
   */
  async refuseClaim(rule: string, data: Record<string, unknown>): Promise<MusterError> {
    await this.#tx.run((tx) =>
      tx.emit({ type: 'machine.claim_refused', actor: 'device', reason: `rule ${rule} refuses it`, data: { ...data, rule } }),
    );
    return new MusterError('invalid_claim', `Rule ${rule} refuses this claim`);
  }

  /** The rule that applies to an arrival, or null. */
  async select(arrival: Arrival): Promise<Rule | null> {
    return selectRule(await this.#rules(), arrival);
  }

  /**
   * The rules in the order they are tried, read again after a rule or Pi tree event (this server's or another
   * replica's) and at least once a second, should an event be missed.
   */
  async #rules(): Promise<Rule[]> {
    const cached = this.#cache;
    if (cached && Date.now() - cached.at < rulesMaxAgeMs) return cached.rules;
    const at = Date.now();
    const rules = (await loadRules(this.#tx.db)).sort(compareRules);
    this.#cache = { rules, at };
    return rules;
  }
}
