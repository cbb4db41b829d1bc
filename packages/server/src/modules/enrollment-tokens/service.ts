import {
  type ClaimStatus,
  type CreatedEnrollmentToken,
  type DeviceConfiguration,
  type EnrollmentToken,
  type EnrollmentTokenCreate,
  MusterError,
  normalizeIdentifier,
  type TokenClaim,
  type TokenClaimAnswer,
} from '@muster/contract';
import type { IssuePolicy } from '../../platform/crypto/ca.ts';
import { newId, now } from '../../platform/crypto/ids.ts';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import { randomCode, sha256Hex } from '../../platform/crypto/secrets.ts';
import type { MachineRow, TokenClaimRow } from '../../platform/db/schema.ts';
import { isUniqueViolation, type Transactor, type Tx } from '../../platform/db/transact.ts';
import { type Budget, MinuteBudget } from '../../platform/limits/budget.ts';
import { parseDuration } from '../../platform/time/duration.ts';
import type { CaService } from '../ca/service.ts';
import { checkSameKey, claimKey, claimStatus, provesPossession, retiredClaim } from '../claims/proof.ts';
import { boundedFacts, type FactsBound } from '../enroll/facts.ts';
import { findFleet } from '../fleets/store.ts';
import { transitionInTx } from '../machines/service.ts';
import {
  findMachineIdByIdentifier,
  findMachineRow,
  insertMachineWithEvent,
  labelsOfMachine,
  newMachineRow,
  replaceLabels,
} from '../machines/store.ts';
import { PoolService } from '../pools/service.ts';
import { machineAddress } from '../pools/store.ts';
import { certificatePolicy, deviceConfiguration, type KeptAnswer, keptAnswer, prepareDevice } from '../profiles/machine.ts';
import { placedColumns, placementFor } from '../profiles/placement.ts';
import { findProfileRow } from '../profiles/store.ts';
import type { RuleService } from '../rules/service.ts';
import {
  decideClaim,
  findClaimByHwid,
  findClaimByMachine,
  findTokenByHash,
  findTokenByName,
  fleetNames,
  insertToken,
  insertTokenClaim,
  listTokenRows,
  revokeTokenRow,
  takeTokenUse,
  tokenFromRow,
} from './store.ts';

// Enrollment tokens (docs/identity.md): a secret baked into an image, like Choria's provisioning token or an
// Azure DPS group enrollment, but bound to a fleet and labels, limited in uses and time, revocable, shown once
// and stored hashed. A device claims with it; the token says whether an operator must approve the claim.

const tokenPrefix = 'mse_';

export class EnrollmentService {
  readonly #tx: Transactor;
  readonly #ca: CaService;
  readonly #facts: FactsBound;

  readonly #rules: RuleService;

  readonly #keyring: Keyring;
  readonly #publicUrl: string;

  /** New machines from every anonymous door together, this one included (docs/security.md). */
  readonly #discoveries: Budget;

  constructor(
    tx: Transactor,
    ca: CaService,
    facts: FactsBound,
    rules: RuleService,
    keyring: Keyring,
    publicUrl: string,
    discoveries: Budget = new MinuteBudget(0),
  ) {
    this.#discoveries = discoveries;
    this.#tx = tx;
    this.#ca = ca;
    this.#facts = facts;
    this.#rules = rules;
    this.#keyring = keyring;
    this.#publicUrl = publicUrl;
  }

  async create(actor: string, input: EnrollmentTokenCreate): Promise<CreatedEnrollmentToken> {
    return this.#tx.run(async (tx) => {
      const fleet = input.fleet ? await findFleet(tx.db, input.fleet) : null;
      if (input.fleet && !fleet) throw new MusterError('not_found', `No fleet ${input.fleet}`);
      if (input.profile && !(await findProfileRow(tx.db, input.profile))) throw new MusterError('not_found', `No profile ${input.profile}`);
      const token = tokenPrefix + randomCode(24);
      const time = now();
      const row = {
        id: newId('e'),
        name: input.name,
        token_hash: sha256Hex(token),
        fleet_id: fleet?.id ?? null,
        labels: JSON.stringify(input.labels ?? {}),
        profile: input.profile ?? null,
        approval: input.approval ?? 'rules',
        max_uses: input.max_uses ?? null,
        uses: 0,
        expires_at: input.expires_in ? new Date(Date.now() + parseDuration(input.expires_in, 'expires_in') * 1000).toISOString() : null,
        revoked_at: null,
        created_by: actor,
        created_at: time,
      };
      try {
        await insertToken(tx.db, row);
      } catch (error) {
        if (isUniqueViolation(error)) throw new MusterError('already_exists', `An enrollment token named ${input.name} exists`);
        throw error;
      }
      await tx.emit({
        type: 'enrollment_token.created',
        actor,
        data: { name: row.name, fleet: fleet?.name ?? null, profile: row.profile, approval: row.approval },
      });
      return { ...tokenFromRow(row, fleet?.name ?? null), token };
    }, 1);
  }

  async list(): Promise<EnrollmentToken[]> {
    const rows = await listTokenRows(this.#tx.db);
    const names = new Map(
      (await fleetNames(this.#tx.db, [...new Set(rows.flatMap((r) => (r.fleet_id ? [r.fleet_id] : [])))])).map((f) => [f.id, f.name]),
    );
    return rows.map((r) => tokenFromRow(r, r.fleet_id ? (names.get(r.fleet_id) ?? null) : null));
  }

  async revoke(actor: string, name: string): Promise<EnrollmentToken> {
    return this.#tx.run(async (tx) => {
      const row = await findTokenByName(tx.db, name);
      if (!row) throw new MusterError('not_found', `No enrollment token ${name}`);
      if (!row.revoked_at) {
        await revokeTokenRow(tx.db, row.id, now());
        await tx.emit({ type: 'enrollment_token.revoked', actor, data: { name } });
      }
      const after = (await findTokenByName(tx.db, name)) ?? row;
      return tokenFromRow(after, (await fleetNames(tx.db, after.fleet_id ? [after.fleet_id] : []))[0]?.name ?? null);
    });
  }

  /**
   * A device claims with a token: the machine is made (enrolled when the token approves by itself, else
   * discovered and pending) and, once approved, its certificate issued from the CSR. Asking again with the same
   * hardware id answers the claim's status (pending 202, approved 200, rejected 403, retired 410), and with proof
   * of the CSR's key the identity itself, rendered now. Everything is rendered before the transaction opens.
   */
  async claim(input: TokenClaim, source: string): Promise<{ answer: TokenClaimAnswer | ClaimStatus; created: boolean }> {
    const hwid = normalizeIdentifier('hwid', input.hwid);
    if (!hwid) throw new MusterError('invalid_identifier', `hwid "${input.hwid}" identifies nothing`);
    const facts = input.facts ? boundedFacts(input.facts, this.#facts) : '{}';
    const token = await findTokenByHash(this.#tx.db, sha256Hex(input.token));
    if (!token) throw new MusterError('invalid_claim', 'The enrollment token is not valid');
    // A claim made while the token was valid keeps its right to ask again, with proof, after the token is revoked.
    const earlier = await findClaimByHwid(this.#tx.db, hwid.value);
    if (earlier && earlier.token_id === token.id) return { answer: await this.#retry(earlier, input), created: false };
    if (token.revoked_at) throw new MusterError('invalid_claim', `The enrollment token ${token.name} was revoked`);
    if (token.expires_at && token.expires_at <= now())
      throw new MusterError('invalid_claim', `The enrollment token ${token.name} expired at ${token.expires_at}`);
    if (token.max_uses !== null && Number(token.uses) >= Number(token.max_uses))
      throw new MusterError('invalid_claim', `The enrollment token ${token.name} is used up`);
    if (earlier || (await findMachineIdByIdentifier(this.#tx.db, hwid))) {
      throw new MusterError('conflict', 'This hardware id belongs to a machine already');
    }
    const labels = JSON.parse(token.labels) as Record<string, string>;
    const rule = await this.#rules.select({ door: 'claim', facts: JSON.parse(facts) as Record<string, unknown>, labels });
    if (rule && rule.action !== 'discover')
      throw await this.#rules.refuseClaim(rule.name, { door: 'token', token: token.name, hwid: hwid.value, source });
    const deviceKey = claimKey(input.csr);
    // A token is in every image: it may make machines only as fast as the other anonymous doors together.
    if (!(await this.#discoveries.admit('token'))) {
      const wait = this.#discoveries.retryAfter();
      throw new MusterError('rate_limited', `Too many new machines this minute; retry in ${wait} s`, { extra: { retry_after: wait } });
    }
    const time = now();
    const placement = await placementFor(this.#tx, rule, { fleetId: token.fleet_id, profile: token.profile, labels });
    const auto =
      token.approval === 'manual' ? false : token.approval === 'auto' ? placement.approval !== 'pending' : placement.approval === 'auto';
    let row = newMachineRow([hwid], {
      state: auto ? 'enrolled' : 'discovered',
      facts,
      enrolled_at: auto ? time : null,
      last_seen_at: time,
    });
    // Placed before the transaction: the host name template renders here, and the fleet number it may use is
    // taken now (a claim that then fails leaves a gap in the sequence, never a number used twice).
    const { columns, hostnameError } = await placedColumns(this.#tx, row, placement, { hwid: hwid.value });
    row = { ...row, ...columns };
    const fleet = placement.fleet;
    const device = auto
      ? await prepareDevice(this.#tx, this.#keyring, row, placement.labels, hwid.value, {
          profile: placement.profile,
          fleet: fleet?.name ?? null,
        })
      : null;
    try {
      return await this.#tx.run(async (tx) => {
        if (await findMachineIdByIdentifier(tx.db, hwid)) {
          throw new MusterError('conflict', 'This hardware id belongs to a machine already');
        }
        if (!(await takeTokenUse(tx.db, token.id))) throw new MusterError('invalid_claim', `The enrollment token ${token.name} is used up`);
        await insertMachineWithEvent(tx, row, [hwid], {
          type: 'machine.claimed',
          machineId: row.id,
          actor: 'device',
          reason: `enrollment token ${token.name}: ${auto ? 'approved' : 'pending'} by ${token.approval === 'rules' || (token.approval === 'auto' && placement.approval === 'pending') ? (rule ? `rule ${rule.name}` : 'no rule approving it') : `the token (${token.approval})`}`,
          data: {
            door: 'token',
            token: token.name,
            approval: auto ? 'auto' : 'pending',
            rule: rule?.name ?? null,
            fleet: fleet?.name ?? null,
            profile: row.profile,
            profile_version: row.profile_version,
            source,
            ...(hostnameError ? { hostname_error: hostnameError } : {}),
          },
        });
        if (Object.keys(placement.labels).length) await replaceLabels(tx.db, row.id, placement.labels);
        const claim: TokenClaimRow = {
          machine_id: row.id,
          token_id: token.id,
          hwid: hwid.value,
          csr: input.csr ?? null,
          status: 'pending',
          answer: null,
          device_key: deviceKey,
          source,
          created_at: time,
          decided_at: null,
          decided_by: null,
        };
        await insertTokenClaim(tx.db, claim);
        if (!device) return { answer: pendingAnswer(claim, row.hostname || null, fleet?.name ?? null, placement.labels), created: true };
        await device.save(tx);
        return { answer: await this.#approveInTx(tx, claim, 'token', device), created: true };
      });
    } catch (error) {
      const raced = isUniqueViolation(error) || (error instanceof MusterError && error.code === 'conflict');
      if (!raced) throw error;
      // The same device, twice at once: the one that lost learns what a retry learns.
      const settled = await findClaimByHwid(this.#tx.db, hwid.value);
      if (settled && settled.token_id === token.id) return { answer: await this.#retry(settled, input), created: false };
      throw new MusterError('conflict', 'This hardware id belongs to a machine already');
    }
  }

  /**
   * An operator approves a pending claim: the machine is enrolled and its certificate issued from the CSR it sent.
   * The operator's answer holds no files: they may hold the machine's secret, which is the device's alone.
   */
  async approve(actor: string, machineId: string): Promise<TokenClaimAnswer> {
    const machine = await findMachineRow(this.#tx.db, machineId);
    const labels = machine ? await labelsOfMachine(this.#tx.db, machineId) : {};
    const policy = machine ? await certificatePolicy(this.#tx, machine, labels) : null;
    const profile = machine?.profile ? { name: machine.profile, version: Number(machine.profile_version) } : undefined;
    return this.#tx.run(async (tx) => {
      const claim = await findClaimByMachine(tx.db, machineId);
      if (!claim) throw new MusterError('not_found', `Machine ${machineId} has no claim waiting for approval`);
      if (claim.status !== 'pending') throw new MusterError('conflict', `The claim of ${machineId} was ${claim.status} already`);
      return this.#approveInTx(tx, claim, actor, { configuration: profile ? { profile } : {}, policy });
    });
  }

  async reject(actor: string, machineId: string, reason = 'rejected by an operator'): Promise<void> {
    await this.#tx.run(async (tx) => {
      const claim = await findClaimByMachine(tx.db, machineId);
      if (!claim) throw new MusterError('not_found', `Machine ${machineId} has no claim waiting for approval`);
      if (!(await decideClaim(tx.db, machineId, { status: 'rejected', answer: null, decided_at: now(), decided_by: actor }))) {
        throw new MusterError('conflict', `The claim of ${machineId} was ${claim.status} already`);
      }
      const machine = await findMachineRow(tx.db, machineId);
      if (machine) await transitionInTx(tx, machine, 'retired', actor, reason);
      await tx.emit({ type: 'machine.rejected', machineId, actor, reason, data: { hwid: claim.hwid } });
    });
  }

  /** Approves inside the caller's transaction, with what was rendered before it opened. */
  async #approveInTx(
    tx: Tx,
    claim: TokenClaimRow,
    actor: string,
    rendered: { configuration: DeviceConfiguration; policy: IssuePolicy | null },
  ): Promise<TokenClaimAnswer> {
    const machine = await findMachineRow(tx.db, claim.machine_id);
    if (!machine) throw new MusterError('not_found', `No machine ${claim.machine_id}`);
    if (machine.state === 'discovered') await transitionInTx(tx, machine, 'enrolled', actor, 'claim approved');
    const labels = await labelsOf(tx, claim.machine_id);
    const fleet = machine.fleet_id ? ((await findFleet(tx.db, machine.fleet_id))?.name ?? null) : null;
    const ip = machine.fleet_id ? await PoolService.allocateInTx(tx, machine.fleet_id, machine.id) : null;
    const certificate = claim.csr
      ? await this.#ca.issueInTx(tx, machine.id, claim.csr, rendered.policy ?? (machine.hostname || machine.id), actor, claim.source)
      : null;
    const answer = this.#approvedAnswer(machine, fleet, labels, rendered.configuration, ip, certificate ?? {});
    await decideClaim(tx.db, claim.machine_id, {
      status: 'approved',
      answer: keptAnswer(answer),
      decided_at: now(),
      decided_by: actor,
    });
    await tx.emit({
      type: 'machine.approved',
      machineId: machine.id,
      actor,
      reason: actor === 'token' ? 'approved at the claim' : 'approved by an operator',
      data: { hwid: claim.hwid, source: claim.source },
    });
    return answer;
  }

  /**
   * The same device asking again: its status, or with proof of its key what the claim gives it, read and rendered
   * now (its host name, profile version, files and address today, which always agree).
   */
  async #retry(claim: TokenClaimRow, input: TokenClaim): Promise<TokenClaimAnswer | ClaimStatus> {
    if (claim.status === 'rejected') throw new MusterError('invalid_claim', 'This claim was rejected by an operator');
    const machine = await findMachineRow(this.#tx.db, claim.machine_id);
    if (!machine || machine.state === 'retired') throw retiredClaim(machine?.updated_at ?? null);
    checkSameKey(claim.device_key, input.csr);
    if (!provesPossession(claim.device_key, input.hwid, input.proof)) return claimStatus(claim.status, claim.device_key !== null);
    const labels = await labelsOf(this.#tx, machine.id);
    const fleet = machine.fleet_id ? ((await findFleet(this.#tx.db, machine.fleet_id))?.name ?? null) : null;
    if (claim.status === 'pending') return pendingAnswer(claim, machine.hostname || null, fleet, labels);
    const device = await deviceConfiguration(this.#tx, this.#keyring, machine, labels, claim.hwid, { fleet });
    const kept = JSON.parse(claim.answer ?? '{}') as KeptAnswer;
    return this.#approvedAnswer(machine, fleet, labels, device.configuration, await machineAddress(this.#tx.db, machine.id), kept);
  }

  #approvedAnswer(
    machine: MachineRow,
    fleet: string | null,
    labels: Record<string, string>,
    configuration: DeviceConfiguration,
    ip: string | null,
    certificate: KeptAnswer,
  ): TokenClaimAnswer {
    const answer: TokenClaimAnswer = { status: 'approved', machine_id: machine.id, hostname: machine.hostname || null, fleet, labels };
    if (ip) answer.ip_address = ip;
    if (certificate.certificate) {
      answer.certificate = certificate.certificate;
      if (certificate.renew_after) answer.renew_after = certificate.renew_after;
      answer.ca_chain = this.#ca.chain;
    }
    answer.configuration = { server: this.#publicUrl, ...configuration };
    return answer;
  }
}

function pendingAnswer(
  claim: TokenClaimRow,
  hostname: string | null,
  fleet: string | null,
  labels: Record<string, string>,
): TokenClaimAnswer {
  return { status: 'pending', machine_id: claim.machine_id, hostname, fleet, labels };
}

function labelsOf(tx: Pick<Tx, 'db'>, machineId: string): Promise<Record<string, string>> {
  return labelsOfMachine(tx.db, machineId);
}
