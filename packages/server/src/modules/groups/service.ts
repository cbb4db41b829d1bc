import { type Group, type GroupCreate, type GroupUpdate, type Machine, MusterError, type PageResult } from '@muster/contract';
import { newId, now } from '../../platform/crypto/ids.ts';
import { countRowsBy } from '../../platform/db/count.ts';
import { defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { GroupRow } from '../../platform/db/schema.ts';
import { orAlreadyExists, type Transactor, type Tx } from '../../platform/db/transact.ts';
import type { MachineService } from '../machines/service.ts';
import { resolveMachine } from '../machines/service.ts';
import { addMember, deleteGroup, findGroupRow, groupRows, insertGroup, memberIdsOf, removeMember, updateGroup } from './store.ts';

export class GroupService {
  readonly #tx: Transactor;
  readonly #machines: MachineService;

  constructor(tx: Transactor, machines: MachineService) {
    this.#tx = tx;
    this.#machines = machines;
  }

  async #toGroups(rows: GroupRow[]): Promise<Group[]> {
    const count = await countRowsBy(
      this.#tx.db,
      { table: 'group_members', column: 'group_id' },
      rows.map((r) => r.id),
    );
    return rows.map((r) => ({ ...r, tags: JSON.parse(r.tags), machine_count: count.get(r.id) ?? 0 }));
  }

  async find(ref: string): Promise<GroupRow> {
    const row = await findGroupRow(this.#tx.db, ref);
    if (!row) throw new MusterError('not_found', `No group ${ref}`);
    return row;
  }

  async get(ref: string): Promise<Group> {
    return (await this.#toGroups([await this.find(ref)]))[0];
  }

  async list(cursor?: string, limit = defaultPageSize): Promise<PageResult<Group>> {
    const page = finishPage(
      await groupRows(this.#tx.db, cursor, limit),
      limit,
      (r) => [r.name],
      (r) => r,
    );
    return { ...page, items: await this.#toGroups(page.items) };
  }

  async create(actor: string, input: GroupCreate): Promise<Group> {
    const time = now();
    const row: GroupRow = {
      id: newId('g'),
      name: input.name,
      description: input.description ?? '',
      tags: JSON.stringify(input.tags ?? []),
      created_at: time,
      updated_at: time,
    };
    await orAlreadyExists(`A group named ${input.name} already exists`, () =>
      this.#tx.run(async (tx) => {
        await insertGroup(tx.db, row);
        await tx.emit({ type: 'group.created', actor, data: { group_id: row.id, name: row.name } });
      }, 1),
    );
    return (await this.#toGroups([row]))[0];
  }

  async update(actor: string, ref: string, patch: GroupUpdate): Promise<Group> {
    const row = await this.find(ref);
    await this.#tx.run(async (tx) => {
      await updateGroup(tx.db, row.id, {
        ...(patch.description !== undefined && { description: patch.description }),
        ...(patch.tags !== undefined && { tags: JSON.stringify(patch.tags) }),
        updated_at: now(),
      });
      await tx.emit({ type: 'group.updated', actor, data: { group_id: row.id, name: row.name } });
    }, 1);
    return this.get(row.id);
  }

  async delete(actor: string, ref: string): Promise<void> {
    const row = await this.find(ref);
    await this.#tx.run(async (tx) => {
      await deleteGroup(tx.db, row.id);
      await tx.emit({ type: 'group.deleted', actor, data: { group_id: row.id, name: row.name } });
    }, 1);
  }

  /** Adds a machine to a group inside a transaction; adding a member again changes nothing. */
  async addInTx(tx: Tx, group: GroupRow, machineRef: string, actor: string): Promise<string> {
    const machine = await resolveMachine(tx.db, machineRef);
    if (await addMember(tx.db, group.id, machine.id, now())) {
      await tx.emit({ type: 'machine.group_added', machineId: machine.id, actor, data: { group: group.name } });
    }
    return machine.id;
  }

  async removeInTx(tx: Tx, group: GroupRow, machineRef: string, actor: string): Promise<string> {
    const machine = await resolveMachine(tx.db, machineRef);
    if (await removeMember(tx.db, group.id, machine.id)) {
      await tx.emit({ type: 'machine.group_removed', machineId: machine.id, actor, data: { group: group.name } });
    }
    return machine.id;
  }

  async addMachine(actor: string, groupRef: string, machineRef: string): Promise<Group> {
    const group = await this.find(groupRef);
    await this.#tx.run((tx) => this.addInTx(tx, group, machineRef, actor), 1);
    return this.get(group.id);
  }

  async removeMachine(actor: string, groupRef: string, machineRef: string): Promise<Group> {
    const group = await this.find(groupRef);
    await this.#tx.run((tx) => this.removeInTx(tx, group, machineRef, actor), 1);
    return this.get(group.id);
  }

  async machines(groupRef: string, cursor?: string, limit = defaultPageSize): Promise<PageResult<Machine>> {
    const group = await this.find(groupRef);
    return this.#machines.list({ group: group.id, cursor, limit });
  }

  async memberIds(groupRef: string, max: number): Promise<string[]> {
    const group = await this.find(groupRef);
    return memberIdsOf(this.#tx.db, group.id, max + 1);
  }
}
