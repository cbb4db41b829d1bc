import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { openNodeSqlite } from './node-sqlite.ts';

interface Row {
  id: number;
  name: string;
  flag: number | null;
}

test('Kysely runs reads, writes and RETURNING through the node:sqlite adapter', async () => {
  const db = new Kysely<{ t: Row }>({ dialect: new SqliteDialect({ database: openNodeSqlite(':memory:') }) });
  await sql`create table t (id integer primary key, name text not null, flag integer)`.execute(db);
  const inserted = await db
    .insertInto('t')
    .values({ id: 1, name: 'a', flag: true as unknown as number })
    .executeTakeFirst();
  assert.equal(inserted.numInsertedOrUpdatedRows, 1n);
  const returned = await db
    .insertInto('t')
    .values({ id: 2, name: 'b', flag: undefined as unknown as null })
    .returningAll()
    .executeTakeFirst();
  assert.deepEqual({ ...returned }, { id: 2, name: 'b', flag: null });
  const updated = await db.updateTable('t').set({ name: 'c' }).where('id', '=', 1).executeTakeFirst();
  assert.equal(updated.numUpdatedRows, 1n);
  const rows = await db.selectFrom('t').selectAll().orderBy('id').execute();
  assert.deepEqual(
    rows.map((r) => ({ ...r })),
    [
      { id: 1, name: 'c', flag: 1 },
      { id: 2, name: 'b', flag: null },
    ],
  );
  await db.destroy();
});

test('a failed transaction leaves nothing behind', async () => {
  const db = new Kysely<{ t: Row }>({ dialect: new SqliteDialect({ database: openNodeSqlite(':memory:') }) });
  await sql`create table t (id integer primary key, name text not null, flag integer)`.execute(db);
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await trx.insertInto('t').values({ id: 1, name: 'a', flag: null }).execute();
      await trx.insertInto('t').values({ id: 1, name: 'dup', flag: null }).execute();
    }),
    /UNIQUE constraint failed/,
  );
  assert.deepEqual(await db.selectFrom('t').selectAll().execute(), []);
  await db.destroy();
});
