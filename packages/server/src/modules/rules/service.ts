import { MusterError, type Rule, type RulePut } from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import type { RuleRow } from '../../platform/db/schema.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import { type BootClaim, compareRules, normalizeMacPrefix, selectRule } from './match.ts';
import { deleteRule, findRuleRow, loadRules, piTreeExists, ruleFromRow, upsertRule } from './store.ts';

/** Writes a rule inside a transaction; the Pi tree it names must exist. */
export async function putRuleInTx(tx: Tx, actor: string, name: string, input: RulePut): Promise<Rule> {
  if (input.pi_tree && !(await piTreeExists(tx.db, input.pi_tree))) {
    throw new MusterError('validation_failed', `No Pi tree named ${input.pi_tree}`, {
      errors: [{ path: '/pi_tree', message: 'no such tree' }],
    });
  }
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
    created_at: existing?.created_at ?? time,
    updated_at: time,
  };
  await upsertRule(tx.db, row);
  await tx.emit({ type: existing ? 'rule.updated' : 'rule.created', actor, data: { rule: name } });
  return ruleFromRow(row);
}

/** Rules place machines that a front door sees for the first time: discover them, ignore them or refuse them. */
export class RuleService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
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
    return this.#tx.run((tx) => putRuleInTx(tx, actor, name, input), 1);
  }

  async delete(actor: string, name: string): Promise<void> {
    await this.#tx.run(async (tx) => {
      if (!(await deleteRule(tx.db, name))) throw new MusterError('not_found', `No rule named ${name}`);
      await tx.emit({ type: 'rule.deleted', actor, data: { rule: name } });
    }, 1);
  }

  /** The rule that applies to a machine nobody knows yet, or null. */
  async select(claim: BootClaim): Promise<Rule | null> {
    return selectRule(await loadRules(this.#tx.db), claim);
  }
}
