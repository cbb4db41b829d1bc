import { type CaPolicy, CaPolicySet, type FieldError, MusterError, type ProfileSpec } from '@muster/contract';
import type { IssuePolicy } from '../../platform/crypto/ca.ts';
import { now } from '../../platform/crypto/ids.ts';
import type { EventBus } from '../../platform/db/event-bus.ts';
import { readSetting, writeSetting } from '../../platform/db/settings.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import { machineAddresses } from '../pools/store.ts';
import { checkPolicySet, issueViolations, policyInForce, profileViolations } from './policy.ts';

// The admin's CA policy (docs/identity.md), one setting shared by every replica. Each server keeps it in memory and
// reads it again after a ca.policy_changed event (its own or another replica's) and at least once a second.

const setting = 'ca_policy';
const maxAgeMs = 1000;

interface Stored {
  policy: CaPolicySet;
  updated_at: string;
  updated_by: string;
}

export class CaPolicyService {
  readonly #tx: Transactor;
  readonly #context: { validitySeconds: number; publicUrl: string };
  #cache: { policy: CaPolicy; at: number } | null = null;

  /** `validitySeconds`: the certificate_validity setting, the longest validity unless the policy says otherwise. */
  constructor(tx: Transactor, context: { validitySeconds: number; publicUrl: string }, bus?: EventBus) {
    this.#tx = tx;
    this.#context = context;
    bus?.subscribe((event) => {
      if (event.type === 'ca.policy_changed') this.#cache = null;
    });
  }

  /** The policy in force, defaults filled in. */
  get(): Promise<CaPolicy> {
    return this.#current(this.#tx.db);
  }

  /** `db`: the caller's transaction when it is in one (SQLite has one connection, which that transaction holds). */
  async #current(db: Tx['db']): Promise<CaPolicy> {
    const cached = this.#cache;
    if (cached && Date.now() - cached.at < maxAgeMs) return cached.policy;
    const at = Date.now();
    const policy = this.#inForce(await readSetting(db, setting));
    this.#cache = { policy, at };
    return policy;
  }

  #inForce(value: string | undefined): CaPolicy {
    if (!value) return policyInForce({}, this.#context);
    const stored = JSON.parse(value) as Stored;
    return policyInForce(stored.policy, this.#context, { updated_at: stored.updated_at, updated_by: stored.updated_by });
  }

  /** Replaces the policy whole (what is left out takes its default); the event lists each field that changed. */
  async set(actor: string, input: CaPolicySet): Promise<CaPolicy> {
    checkPolicySet(input);
    const fields = Object.keys(CaPolicySet.properties) as (keyof CaPolicySet)[];
    this.#cache = null;
    await this.#tx.run(async (tx) => {
      const before = this.#inForce(await readSetting(tx.db, setting));
      const after = policyInForce(input, this.#context);
      const changed = Object.fromEntries(
        fields
          .filter((field) => JSON.stringify(before[field]) !== JSON.stringify(after[field]))
          .map((field) => [field, { from: before[field], to: after[field] }]),
      );
      if (!Object.keys(changed).length) return;
      const stored: Stored = { policy: input, updated_at: now(), updated_by: actor };
      await writeSetting(tx.db, setting, JSON.stringify(stored));
      await tx.emit({ type: 'ca.policy_changed', actor, data: { changed } });
    }, 1);
    this.#cache = null;
    return this.get();
  }

  /** The fields of a profile's certificate section outside the policy, a pointer each; inside the caller's transaction. */
  async checkProfile(tx: Tx, spec: ProfileSpec): Promise<FieldError[]> {
    return profileViolations(spec.certificate, await this.#current(tx.db));
  }

  /**
   * The certificate to issue, checked whole against the policy in force: the machine's own pool address is allowed
   * as an IP SAN. A validity the profile asks for that is too long is refused, never shortened; without one the
   * server's, capped at the policy's. Refusal is ca_policy_violation naming each field and rule.
   */
  async checkIssue(
    tx: Pick<Tx, 'db'>,
    machineId: string,
    issue: IssuePolicy & Required<Pick<IssuePolicy, 'keyUsages' | 'extendedKeyUsages'>>,
  ): Promise<IssuePolicy & { days: number }> {
    const policy = await this.#current(tx.db);
    const serverDays = Math.min(this.#context.validitySeconds, policy.max_validity_seconds) / 86_400;
    const made = { ...issue, days: issue.days ?? serverDays };
    // The pool addresses matter only to a certificate that names an IP: most claims need no query for them.
    const addresses = issue.ipAddresses?.length ? await machineAddresses(tx.db, machineId) : [];
    const errors = issueViolations(made, policy, addresses, issue.days !== undefined);
    if (errors.length)
      throw new MusterError(
        'ca_policy_violation',
        `The CA policy does not allow this certificate: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
        { errors },
      );
    return made;
  }
}
