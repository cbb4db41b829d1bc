import { type BulkRequest, type BulkResult, type MachineUpdate, MusterError } from '@muster/contract';
import type { Principal } from '../../platform/auth/policy.ts';
import { now } from '../../platform/crypto/ids.ts';
import { sha256Hex } from '../../platform/crypto/secrets.ts';
import { isUniqueViolation, type Transactor } from '../../platform/db/transact.ts';
import type { BuildService } from '../builds/service.ts';
import type { GroupService } from '../groups/service.ts';
import { type MachineService, resolveMachine, transitionInTx } from '../machines/service.ts';
import { deleteIdempotencyKey, findIdempotencyKey, finishIdempotencyKey, insertIdempotencyKey } from './store.ts';

const maxMachines = 1000;
type Result = BulkResult['results'][number];

export class BulkService {
  readonly #tx: Transactor;
  readonly #machines: MachineService;
  readonly #groups: GroupService;
  readonly #builds: BuildService;

  constructor(tx: Transactor, machines: MachineService, groups: GroupService, builds: BuildService) {
    this.#tx = tx;
    this.#machines = machines;
    this.#groups = groups;
    this.#builds = builds;
  }

  /** Runs one operation on many machines, each in its own transaction, and reports each one. */
  async run(principal: Principal, request: BulkRequest, idempotencyKey?: string): Promise<BulkResult> {
    if (!idempotencyKey) return this.#run(principal, request);
    const hash = sha256Hex(JSON.stringify(request));
    const stored = await findIdempotencyKey(this.#tx.db, principal.userId, idempotencyKey);
    if (stored) return this.#replay(stored, hash);
    try {
      await insertIdempotencyKey(this.#tx.db, {
        user_id: principal.userId,
        key: idempotencyKey,
        request_hash: hash,
        status: 0,
        response: '',
        created_at: now(),
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new MusterError('conflict', 'A request with this Idempotency-Key is still running; retry later');
      throw error;
    }
    try {
      const result = await this.#run(principal, request);
      await finishIdempotencyKey(this.#tx.db, principal.userId, idempotencyKey, 200, JSON.stringify(result));
      return result;
    } catch (error) {
      await deleteIdempotencyKey(this.#tx.db, principal.userId, idempotencyKey);
      throw error;
    }
  }

  #replay(stored: { request_hash: string; status: number; response: string }, hash: string): BulkResult {
    if (stored.request_hash !== hash)
      throw new MusterError('idempotency_mismatch', 'This Idempotency-Key was used for a different request');
    if (stored.status === 0) throw new MusterError('conflict', 'A request with this Idempotency-Key is still running; retry later');
    return JSON.parse(stored.response) as BulkResult;
  }

  async #targets(request: BulkRequest): Promise<string[]> {
    if (request.machine_ids && request.group_id) {
      throw new MusterError('validation_failed', 'Give machine_ids or group_id, not both', {
        errors: [
          { path: '/machine_ids', message: 'not allowed with group_id' },
          { path: '/group_id', message: 'not allowed with machine_ids' },
        ],
      });
    }
    if (request.machine_ids) return [...new Set(request.machine_ids)];
    if (!request.group_id) {
      throw new MusterError('validation_failed', 'Give machine_ids or group_id', {
        errors: [{ path: '/machine_ids', message: 'is required without group_id' }],
      });
    }
    const ids = await this.#groups.memberIds(request.group_id, maxMachines);
    if (ids.length > maxMachines)
      throw new MusterError('validation_failed', `The group has more than ${maxMachines} machines; run the operation on parts of it`);
    return ids;
  }

  #checkData(request: BulkRequest): void {
    const data = request.data ?? {};
    const need = (field: string, present: boolean) => {
      if (!present)
        throw new MusterError('validation_failed', `${request.operation} needs data.${field}`, {
          errors: [{ path: `/data/${field}`, message: 'is required' }],
        });
    };
    if (request.operation === 'update') need('hostname, description, nixos_config, fleet or labels', this.#update(request) !== null);
    if (request.operation === 'transition') need('to', data.to !== undefined);
    if (request.operation === 'add_to_group' || request.operation === 'remove_from_group') need('group', data.group !== undefined);
  }

  #update(request: BulkRequest): MachineUpdate | null {
    const { to: _to, reason: _reason, group: _group, ...update } = request.data ?? {};
    return Object.keys(update).length > 0 ? update : null;
  }

  async #run(principal: Principal, request: BulkRequest): Promise<BulkResult> {
    this.#checkData(request);
    const targets = await this.#targets(request);
    const data = request.data ?? {};
    const group = data.group ? await this.#groups.find(data.group) : null;
    const actor = principal.actor;
    const results: Result[] = [];
    for (const ref of targets) {
      try {
        const outcome = await this.#tx.run(async (tx): Promise<Result> => {
          switch (request.operation) {
            case 'update': {
              const row = await resolveMachine(tx.db, ref);
              await this.#machines.applyUpdate(tx, row, this.#update(request) as MachineUpdate, actor);
              return { machine_id: row.id, ok: true };
            }
            case 'build': {
              const job = await this.#builds.startInTx(tx, ref, actor);
              return { machine_id: job.machine_id ?? ref, ok: true, job_id: job.id };
            }
            case 'transition': {
              const row = await resolveMachine(tx.db, ref);
              await transitionInTx(tx, row, data.to!, actor, data.reason ?? 'bulk transition');
              return { machine_id: row.id, ok: true };
            }
            case 'add_to_group':
              return { machine_id: await this.#groups.addInTx(tx, group!, ref, actor), ok: true };
            case 'remove_from_group':
              return { machine_id: await this.#groups.removeInTx(tx, group!, ref, actor), ok: true };
            default:
              throw new MusterError('validation_failed', `Unknown operation ${request.operation}`);
          }
        }, 1);
        results.push(outcome);
      } catch (error) {
        if (!(error instanceof MusterError)) throw error;
        results.push({ machine_id: ref, ok: false, code: error.code, detail: error.message });
      }
    }
    if (request.operation === 'build') this.#builds.wake();
    const succeeded = results.filter((r) => r.ok).length;
    return { operation: request.operation, total: results.length, succeeded, failed: results.length - succeeded, results };
  }
}
