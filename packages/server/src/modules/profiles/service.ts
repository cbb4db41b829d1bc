import { createHash } from 'node:crypto';
import {
  MusterError,
  type Profile,
  type ProfileApplied,
  type ProfileRolloutResult,
  type ProfileSpec,
  type ProfileVersion,
} from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import { isUniqueViolation, type Transactor, type Tx } from '../../platform/db/transact.ts';
import { checkTemplate } from '../../platform/templates/render.ts';
import { parseDuration } from '../../platform/time/duration.ts';
import type { CaPolicyService } from '../ca/policy-service.ts';
import { findMachineRow } from '../machines/store.ts';
import { piTreeExists } from '../rules/store.ts';
import { secretFlowErrors } from './secret-flow.ts';
import {
  currentVersion,
  deleteProfileRows,
  endpointExists,
  findProfileRow,
  findVersion,
  insertVersion,
  listProfiles,
  listVersions,
  machinesBehind,
  nextVersion,
  profileReferences,
  setMachineProfileVersion,
} from './store.ts';

/**
 * The spec as one string, keys sorted (but variables kept in their order: later ones may use earlier ones), so
 * that applying the same document again, however its keys are ordered, makes no new version.
 */
export function canonicalSpec(spec: ProfileSpec): string {
  const sort = (value: unknown, keepOrder = false): unknown => {
    if (Array.isArray(value)) return value.map((v) => sort(v));
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    if (!keepOrder) keys.sort();
    return Object.fromEntries(keys.map((k) => [k, sort((value as Record<string, unknown>)[k], k === 'variables')]));
  };
  return JSON.stringify(sort(spec));
}

/** Every template of a spec with its JSON pointer, to check each parses when the profile is applied. */
function templates(spec: ProfileSpec): [string, string][] {
  const found: [string, string][] = [];
  if (spec.hostname) found.push(['/spec/hostname', spec.hostname]);
  for (const [k, v] of Object.entries(spec.variables ?? {})) found.push([`/spec/variables/${k}`, v]);
  for (const [i, f] of (spec.files ?? []).entries()) found.push([`/spec/files/${i}/template`, f.template]);
  if (spec.boot?.ipxe) found.push(['/spec/boot/ipxe', spec.boot.ipxe]);
  const c = spec.certificate;
  if (c?.common_name) found.push(['/spec/certificate/common_name', c.common_name]);
  for (const [i, v] of (c?.dns_names ?? []).entries()) found.push([`/spec/certificate/dns_names/${i}`, v]);
  for (const [i, v] of (c?.ip_addresses ?? []).entries()) found.push([`/spec/certificate/ip_addresses/${i}`, v]);
  const requests: [string, { path: string; body?: Record<string, string> }][] = [];
  if (spec.account) requests.push(['/spec/account/create', spec.account.create]);
  if (spec.account?.update) requests.push(['/spec/account/update', spec.account.update]);
  for (const [i, check] of (spec.checks ?? []).entries()) requests.push([`/spec/checks/${i}/request`, check.request]);
  for (const [at, request] of requests) {
    found.push([`${at}/path`, request.path]);
    for (const [k, v] of Object.entries(request.body ?? {})) found.push([`${at}/body/${k}`, v]);
  }
  for (const [i, v] of (spec.agent?.commands ?? []).entries()) found.push([`/spec/agent/commands/${i}`, v]);
  return found;
}

/** Versioned profiles (docs/profiles.md): every change a new version, machines keep the version they got. */
export class ProfileService {
  readonly #tx: Transactor;
  readonly #caPolicy: CaPolicyService;

  /** `caPolicy`: a profile's certificate section may narrow the CA policy, never widen it. */
  constructor(tx: Transactor, caPolicy: CaPolicyService) {
    this.#tx = tx;
    this.#caPolicy = caPolicy;
  }

  list(): Promise<Profile[]> {
    return listProfiles(this.#tx.db);
  }

  async get(name: string): Promise<Profile> {
    const [profile] = await listProfiles(this.#tx.db, name);
    if (!profile) throw new MusterError('not_found', `No profile named ${name}`);
    return profile;
  }

  /** One version, the current one when `version` is not given. */
  async version(name: string, version?: number): Promise<ProfileVersion> {
    const found = version === undefined ? await currentVersion(this.#tx.db, name) : await findVersion(this.#tx.db, name, version);
    if (!found) {
      if (version !== undefined && (await findProfileRow(this.#tx.db, name)))
        throw new MusterError('not_found', `Profile ${name} has no version ${version}`);
      throw new MusterError('not_found', `No profile named ${name}`);
    }
    return found;
  }

  async history(name: string): Promise<ProfileVersion[]> {
    const versions = await listVersions(this.#tx.db, name);
    if (!versions.length) throw new MusterError('not_found', `No profile named ${name}`);
    return versions;
  }

  /**
   * Checks what the schema cannot: templates parse, durations and the names a spec refers to exist, and the
   * certificate section stays inside the CA policy (what the document says literally; rendered names at issuance).
   */
  async #check(tx: Tx, spec: ProfileSpec): Promise<void> {
    const errors: { path: string; message: string }[] = [];
    for (const [path, source] of templates(spec)) {
      try {
        checkTemplate(path, source);
      } catch (error) {
        errors.push({ path, message: (error as Error).message });
      }
    }
    // What others read must not depend on the machine secret (docs/profiles.md): named with the chain that leads there.
    for (const { path, message } of secretFlowErrors(spec)) errors.push({ path: `/spec${path}`, message });
    if (spec.certificate?.validity && parseDuration(spec.certificate.validity) < 3600)
      errors.push({ path: '/spec/certificate/validity', message: 'at least 1h' });
    errors.push(...(await this.#caPolicy.checkProfile(tx, spec)));
    if (spec.account?.timeout && parseDuration(spec.account.timeout) > 120)
      errors.push({ path: '/spec/account/timeout', message: 'at most 120s' });
    if (spec.boot?.pi_tree && !(await piTreeExists(tx.db, spec.boot.pi_tree)))
      errors.push({ path: '/spec/boot/pi_tree', message: `no Pi tree named ${spec.boot.pi_tree}` });
    const endpoints: [string, string][] = [];
    if (spec.account) endpoints.push(['/spec/account/endpoint', spec.account.endpoint]);
    for (const [i, check] of (spec.checks ?? []).entries()) endpoints.push([`/spec/checks/${i}/endpoint`, check.endpoint]);
    for (const [path, name] of endpoints)
      if (!(await endpointExists(tx.db, name))) errors.push({ path, message: `no endpoint named ${name} (muster endpoint set)` });
    const paths = new Set<string>();
    for (const [i, file] of (spec.files ?? []).entries()) {
      const path = file.path.replace(/^\/+/, '');
      if (paths.has(path)) errors.push({ path: `/spec/files/${i}/path`, message: `${path} is given twice` });
      paths.add(path);
    }
    if (errors.length)
      throw new MusterError('validation_failed', `The profile is not valid: ${errors[0].path}: ${errors[0].message}`, { errors });
  }

  /** Applies a spec: a new version when it differs from the current one, else nothing changes. */
  async apply(actor: string, name: string, spec: ProfileSpec, comment = ''): Promise<ProfileApplied> {
    try {
      return await this.#apply(actor, name, spec, comment);
    } catch (error) {
      // Two first applies of one name at once (two replicas): the loser's insert meets the winner's row; once more,
      // it is an update of that row.
      if (!isUniqueViolation(error)) throw error;
      return this.#apply(actor, name, spec, comment);
    }
  }

  async #apply(actor: string, name: string, spec: ProfileSpec, comment: string): Promise<ProfileApplied> {
    const canonical = canonicalSpec(spec);
    const digest = createHash('sha256').update(canonical).digest('hex');
    const applied = await this.#tx.run(async (tx) => {
      await this.#check(tx, spec);
      const current = await currentVersion(tx.db, name);
      if (current?.digest === digest) return { version: current, changed: false };
      const at = now();
      const { version, created } = await nextVersion(tx.db, name, at);
      const row = { profile: name, version, spec: canonical, digest, actor, comment, created_at: at };
      await insertVersion(tx.db, row);
      await tx.emit({
        type: created ? 'profile.created' : 'profile.updated',
        actor,
        reason: comment || undefined,
        data: { profile: name, version, digest, ...(current ? { previous: current.version } : {}) },
      });
      return { version: { name, version, spec: JSON.parse(canonical), digest, actor, comment, created_at: at }, changed: true };
    }, 1);
    return { profile: await this.get(name), ...applied };
  }

  /** Makes an earlier version current again, as a new version (history is never rewritten). */
  async rollback(actor: string, name: string, version: number, comment?: string): Promise<ProfileApplied> {
    const old = await this.version(name, version);
    return this.apply(actor, name, old.spec, comment ?? `rollback to version ${version}`);
  }

  /**
   * Moves machines on this profile to its current version, those with all of `labels` (every machine when
   * none are given): how a change reaches machines, deliberately. `dryRun` lists them and changes nothing.
   */
  async rollout(actor: string, name: string, labels: Record<string, string>, dryRun: boolean): Promise<ProfileRolloutResult> {
    return this.#tx.run(async (tx) => {
      const profile = await findProfileRow(tx.db, name);
      if (!profile) throw new MusterError('not_found', `No profile named ${name}`);
      const behind = (await machinesBehind(tx.db, name, profile.version)).filter((m) =>
        Object.entries(labels).every(([k, v]) => m.labels[k] === v),
      );
      const machines = behind.map((m) => ({ id: m.id, hostname: m.hostname || null, from: m.profile_version }));
      if (!dryRun) {
        const at = now();
        for (const m of machines) {
          await setMachineProfileVersion(tx.db, m.id, name, profile.version, at);
          await tx.emit({
            type: 'machine.profile_changed',
            actor,
            machineId: m.id,
            reason: 'rollout',
            data: { profile: name, from: m.from, to: profile.version },
          });
        }
      }
      return { version: profile.version, machines, dry_run: dryRun };
    }, 1);
  }

  /** Gives machines a profile at a version (the current one by default): an operator's choice over the rules'. */
  async assign(actor: string, name: string, machineIds: string[], version?: number): Promise<ProfileRolloutResult> {
    return this.#tx.run(async (tx) => {
      const profile = await findProfileRow(tx.db, name);
      if (!profile) throw new MusterError('not_found', `No profile named ${name}`);
      const target = version ?? profile.version;
      if (!(await findVersion(tx.db, name, target))) throw new MusterError('not_found', `Profile ${name} has no version ${target}`);
      const at = now();
      const machines: ProfileRolloutResult['machines'] = [];
      for (const id of machineIds) {
        const row = await findMachineRow(tx.db, id);
        if (!row) throw new MusterError('machine_not_found', `No machine ${id}`);
        if (row.profile === name && row.profile_version === target) continue;
        await setMachineProfileVersion(tx.db, id, name, target, at);
        await tx.emit({
          type: 'machine.profile_changed',
          actor,
          machineId: id,
          reason: 'assigned',
          data: { profile: name, from: row.profile === name ? row.profile_version : null, previous_profile: row.profile, to: target },
        });
        machines.push({ id, hostname: row.hostname || null, from: row.profile === name ? row.profile_version : null });
      }
      return { version: target, machines, dry_run: false };
    }, 1);
  }

  /** Deletes a profile and its history; refused while machines, rules or enrollment tokens use it. */
  async delete(actor: string, name: string): Promise<void> {
    await this.#tx.run(async (tx) => {
      if (!(await findProfileRow(tx.db, name))) throw new MusterError('not_found', `No profile named ${name}`);
      const refs = await profileReferences(tx.db, name);
      const users = [
        refs.machines ? `${refs.machines} machine(s)` : '',
        refs.rules.length ? `rule(s) ${refs.rules.join(', ')}` : '',
        refs.tokens.length ? `enrollment token(s) ${refs.tokens.join(', ')}` : '',
      ].filter(Boolean);
      if (users.length) throw new MusterError('conflict', `Profile ${name} is used by ${users.join(' and ')}`);
      await deleteProfileRows(tx.db, name);
      await tx.emit({ type: 'profile.deleted', actor, data: { profile: name } });
    }, 1);
  }
}
