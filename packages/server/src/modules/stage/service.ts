import {
  type Identifier,
  MusterError,
  normalizeIdentifier,
  type ProfileVersion,
  type RenderedFile,
  type StageRequest,
  type StageResult,
} from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import type { MachineRow } from '../../platform/db/schema.ts';
import { isUniqueViolation, type Transactor, type Tx } from '../../platform/db/transact.ts';
import type { EndpointService } from '../endpoints/service.ts';
import {
  findMachineIdByIdentifier,
  findMachineRow,
  insertMachineWithEvent,
  labelsOfMachine,
  lockMachineRow,
  newMachineRow,
  updateMachineRow,
} from '../machines/store.ts';
import { contextOf, placedColumns, placementFor } from '../profiles/placement.ts';
import { type ProfileContexts, profileContexts, renderProfile } from '../profiles/render.ts';
import { machineSecretName, newSecret, usesSecret } from '../profiles/secrets.ts';
import { findMachineSecret, saveMachineSecret } from '../profiles/store.ts';
import { HookFailure, hookTimeoutMs, runAccountHook, runChecks } from './hook.ts';

// `muster stage` (docs/stage.md, seed 002): a machine's identity made before its image is flashed. Everything is
// read and rendered first, then the account hook runs, and only once it has succeeded are the machine, its profile
// version and its secret committed, in one transaction: a failed hook leaves nothing behind but an event.

/** What a stage will commit, read and rendered before the hook runs. */
interface StagePlan {
  serial: Identifier;
  existing: MachineRow | null;
  /** The machine as it will be: the new row, or the existing one with `changes`. */
  row: MachineRow;
  changes: Partial<MachineRow>;
  profile: ProfileVersion;
  secret: string;
  secretState: StageResult['secret'];
  /** The sealed secret as read, to find at commit that no other stage changed it meanwhile. */
  storedSealed: string | null;
  contexts: ProfileContexts;
  files: RenderedFile[];
}

export class StageService {
  readonly #tx: Transactor;
  readonly #keyring: Keyring;
  readonly #endpoints: EndpointService;
  /** Stages of one serial in this process run one after another (another replica's are caught at commit). */
  readonly #running = new Map<string, Promise<unknown>>();

  constructor(tx: Transactor, keyring: Keyring, endpoints: EndpointService) {
    this.#tx = tx;
    this.#keyring = keyring;
    this.#endpoints = endpoints;
  }

  async stage(actor: string, input: StageRequest): Promise<StageResult> {
    const serial = normalizeIdentifier('serial', input.serial);
    if (!serial)
      throw new MusterError('no_usable_identifier', `${input.serial} is a firmware default, not a serial`, {
        errors: [{ path: '/serial', message: 'is a firmware default' }],
      });
    return this.#oneAtATime(serial.value, () => this.#stage(actor, serial, input));
  }

  async #stage(actor: string, serial: Identifier, input: StageRequest): Promise<StageResult> {
    const plan = await this.#plan(serial, input);
    const lookup = (name: string) => this.#endpoints.resolve(name);
    let account: StageResult['account'] = null;
    const hook = plan.profile.spec.account;
    if (hook) {
      try {
        account = await runAccountHook(lookup, hook, plan.contexts);
      } catch (error) {
        if (!(error instanceof HookFailure)) throw error;
        await this.#recordFailure(actor, plan, error.message, { step: error.step, status: error.status });
        throw new MusterError('hook_failed', `The account hook failed, so nothing was staged: ${error.message}`, {
          extra: { step: error.step, hook_status: error.status },
        });
      }
    }
    await this.#commit(actor, plan, account);
    const result: StageResult = {
      machine_id: plan.row.id,
      created: plan.existing === null,
      serial: serial.value,
      hostname: plan.row.hostname || null,
      profile: plan.profile.name,
      profile_version: plan.profile.version,
      account,
      secret: plan.secretState,
      files: plan.files,
    };
    if (input.verify) result.checks = await runChecks(lookup, plan.profile.spec.checks ?? [], plan.contexts, hookTimeoutMs(hook));
    return result;
  }

  /** Reads the machine, its profile and its secret, and renders everything the hook and the answer need. */
  async #plan(serial: Identifier, input: StageRequest): Promise<StagePlan> {
    const db = this.#tx.db;
    const id = await findMachineIdByIdentifier(db, serial);
    const existing = (id ? await findMachineRow(db, id) : undefined) ?? null;
    if (existing?.state === 'retired')
      throw new MusterError('conflict', `serial:${serial.value} belongs to ${existing.id}, which is retired`);
    const profileName = input.profile ?? existing?.profile ?? null;
    if (!profileName)
      throw new MusterError('bad_request', `serial:${serial.value} has no profile: give one`, {
        errors: [{ path: '/profile', message: 'required: the machine has no profile' }],
      });
    const labels = existing ? await labelsOfMachine(db, existing.id) : {};
    const placement = await placementFor({ db }, null, { fleetId: existing?.fleet_id, profile: profileName, labels });
    const profile = placement.profile;
    if (!profile) throw new MusterError('not_found', `No profile named ${profileName}`);
    const time = now();
    const base = existing ?? newMachineRow([serial], { state: 'enrolled', enrolled_at: time }, time);
    // No fleet is taken here (the placement's fleet is the one the machine already has), so nothing is written.
    const placed = await placedColumns({ db }, base, placement);
    if (placed.hostnameError) throw new MusterError('validation_failed', placed.hostnameError);
    const changes: Partial<MachineRow> = {
      ...placed.columns,
      profile: profile.name,
      profile_version: profile.version,
      updated_at: time,
    };
    const row = { ...base, ...changes };
    const secret = await this.#secretFor(row.id, existing !== null, profile, input.rotate_secret === true);
    const contexts = await profileContexts(
      profile.spec,
      { name: profile.name, version: profile.version },
      contextOf(row, { fleet: placement.fleet?.name ?? null, labels }),
      secret.secret,
    );
    const files = (await renderProfile(profile.spec, contexts)).files;
    return { serial, existing, row, changes, profile, ...secret, contexts, files };
  }

  /** The stored secret, or a new one (made now, stored only at commit); none when the profile uses none. */
  async #secretFor(
    machineId: string,
    exists: boolean,
    profile: ProfileVersion,
    rotate: boolean,
  ): Promise<Pick<StagePlan, 'secret' | 'secretState' | 'storedSealed'>> {
    if (!usesSecret(profile.spec)) return { secret: '', secretState: null, storedSealed: null };
    const stored = exists ? ((await findMachineSecret(this.#tx.db, machineId))?.secret ?? null) : null;
    if (stored !== null && !rotate)
      return { secret: this.#keyring.open(stored, machineSecretName(machineId)), secretState: 'kept', storedSealed: stored };
    return { secret: newSecret(profile.spec), secretState: stored === null ? 'made' : 'rotated', storedSealed: stored };
  }

  /** The machine, its profile version, its secret and the event, in one transaction. */
  async #commit(actor: string, plan: StagePlan, account: StageResult['account']): Promise<void> {
    try {
      await this.#tx.run((tx) => this.#commitInTx(tx, actor, plan, account), 1);
    } catch (error) {
      if (!(error instanceof Raced) && !isUniqueViolation(error)) throw error;
      const reason = 'another stage of this serial committed first';
      await this.#recordFailure(actor, plan, reason, { step: 'commit', account });
      throw new MusterError(
        'conflict',
        `${reason}; the account may hold this stage's secret now: run the stage again, which sets the stored secret`,
      );
    }
  }

  async #commitInTx(tx: Tx, actor: string, plan: StagePlan, account: StageResult['account']): Promise<void> {
    const id = plan.row.id;
    if (plan.existing) await lockMachineRow(tx, id);
    if (((await findMachineIdByIdentifier(tx.db, plan.serial)) ?? null) !== (plan.existing?.id ?? null)) throw new Raced();
    if (plan.secretState && ((await findMachineSecret(tx.db, id))?.secret ?? null) !== plan.storedSealed) throw new Raced();
    const before = plan.existing;
    const event = {
      type: 'machine.staged',
      machineId: id,
      actor,
      data: {
        serial: plan.serial.value,
        hostname: plan.row.hostname || null,
        profile: plan.profile.name,
        version: plan.profile.version,
        from:
          before?.profile && (before.profile !== plan.profile.name || before.profile_version !== plan.profile.version)
            ? { profile: before.profile, version: before.profile_version }
            : null,
        account,
        secret: plan.secretState,
        created: before === null,
      },
    };
    if (before) {
      await updateMachineRow(tx.db, id, plan.changes);
      await tx.emit(event);
    } else await insertMachineWithEvent(tx, plan.row, [plan.serial], event);
    if (plan.secretState === 'made' || plan.secretState === 'rotated')
      await saveMachineSecret(tx.db, id, this.#keyring.seal(plan.secret, machineSecretName(id)), now());
  }

  /** A stage that failed: recorded as an event (never with the secret), in a transaction of its own. */
  async #recordFailure(actor: string, plan: StagePlan, reason: string, data: Record<string, unknown>): Promise<void> {
    await this.#tx.run((tx) =>
      tx.emit({
        type: 'machine.stage_failed',
        machineId: plan.existing?.id ?? null,
        actor,
        reason,
        data: { serial: plan.serial.value, profile: plan.profile.name, version: plan.profile.version, ...data },
      }),
    );
  }

  async #oneAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
    const current = (this.#running.get(key) ?? Promise.resolve()).then(work, work);
    const settled = current.catch(() => {});
    this.#running.set(key, settled);
    try {
      return await current;
    } finally {
      if (this.#running.get(key) === settled) this.#running.delete(key);
    }
  }
}

/** The machine or its secret changed between reading and committing. */
class Raced extends Error {}
