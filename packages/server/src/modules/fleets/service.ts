import { type Fleet, type FleetCreate, type FleetUpdate, MusterError, type PageResult } from '@muster/contract';
import { newId, now } from '../../platform/crypto/ids.ts';
import { countRowsBy } from '../../platform/db/count.ts';
import { defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { FleetRow } from '../../platform/db/schema.ts';
import { orAlreadyExists, type Transactor } from '../../platform/db/transact.ts';
import { deleteFleet, findFleet, fleetRows, insertFleet, updateFleet } from './store.ts';

export class FleetService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
  }

  async #toFleets(rows: FleetRow[]): Promise<Fleet[]> {
    const count = await countRowsBy(
      this.#tx.db,
      { table: 'machines', column: 'fleet_id' },
      rows.map((r) => r.id),
    );
    return rows.map((r) => ({ ...r, machine_count: count.get(r.id) ?? 0 }));
  }

  async #find(ref: string): Promise<FleetRow> {
    const row = await findFleet(this.#tx.db, ref);
    if (!row) throw new MusterError('not_found', `No fleet ${ref}`);
    return row;
  }

  async get(ref: string): Promise<Fleet> {
    return (await this.#toFleets([await this.#find(ref)]))[0];
  }

  async list(cursor?: string, limit = defaultPageSize): Promise<PageResult<Fleet>> {
    const page = finishPage(
      await fleetRows(this.#tx.db, cursor, limit),
      limit,
      (r) => [r.name],
      (r) => r,
    );
    return { ...page, items: await this.#toFleets(page.items) };
  }

  async create(actor: string, input: FleetCreate): Promise<Fleet> {
    const time = now();
    const row: FleetRow = {
      id: newId('f'),
      name: input.name,
      description: input.description ?? '',
      next_seq: 1,
      created_at: time,
      updated_at: time,
    };
    await orAlreadyExists(`A fleet named ${input.name} already exists`, () =>
      this.#tx.run(async (tx) => {
        await insertFleet(tx.db, row);
        await tx.emit({ type: 'fleet.created', actor, data: { fleet_id: row.id, name: row.name } });
      }, 1),
    );
    return { ...row, machine_count: 0 };
  }

  async update(actor: string, ref: string, patch: FleetUpdate): Promise<Fleet> {
    const row = await this.#find(ref);
    await this.#tx.run(async (tx) => {
      await updateFleet(tx.db, row.id, { description: patch.description, updated_at: now() });
      await tx.emit({ type: 'fleet.updated', actor, data: { fleet_id: row.id, name: row.name } });
    }, 1);
    return this.get(row.id);
  }

  /** Deletes an empty fleet; a fleet with machines is kept so that their numbers stay meaningful. */
  async delete(actor: string, ref: string): Promise<void> {
    const fleet = await this.get(ref);
    if (fleet.machine_count > 0)
      throw new MusterError('conflict', `Fleet ${fleet.name} still has ${fleet.machine_count} machines; move them first`);
    await this.#tx.run(async (tx) => {
      await deleteFleet(tx.db, fleet.id);
      await tx.emit({ type: 'fleet.deleted', actor, data: { fleet_id: fleet.id, name: fleet.name } });
    }, 1);
  }
}
