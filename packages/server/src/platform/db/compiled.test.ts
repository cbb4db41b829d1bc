import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { executeByShape } from './compiled.ts';
import { openNodeSqlite } from './node-sqlite.ts';

interface Row {
  id: number;
  name: string;
  note: string | null;
}

async function table() {
  const db = new Kysely<{ t: Row }>({ dialect: new SqliteDialect({ database: openNodeSqlite(':memory:') }) });
  await sql`create table t (id integer primary key, name text not null, note text default 'none')`.execute(db);
  let compiles = 0;
  const insert = (rows: Row[] | Omit<Row, 'note'>[], parameters: unknown[]) =>
    executeByShape(
      db,
      `t ${rows.length} ${Object.keys(rows[0])}`,
      () => {
        compiles++;
        return db.insertInto('t').values(rows);
      },
      parameters,
    );
  const all = async () => (await db.selectFrom('t').selectAll().orderBy('id').execute()).map((r) => ({ ...r }));
  return { db, insert, all, compiles: () => compiles };
}

test('a shape is compiled once; later queries of that shape bind their own values to the same SQL', async () => {
  const { db, insert, all, compiles } = await table();
  await insert([{ id: 1, name: 'a', note: 'x' }], [1, 'a', 'x']);
  await insert([{ id: 2, name: 'b', note: null }], [2, 'b', null]);
  await insert(
    [
      { id: 3, name: 'c', note: 'y' },
      { id: 4, name: 'd', note: 'z' },
    ],
    [3, 'c', 'y', 4, 'd', 'z'],
  );
  await insert([{ id: 5, name: 'e' }], [5, 'e']);
  await insert([{ id: 6, name: 'f' }], [6, 'f']);
  assert.deepEqual(await all(), [
    { id: 1, name: 'a', note: 'x' },
    { id: 2, name: 'b', note: null },
    { id: 3, name: 'c', note: 'y' },
    { id: 4, name: 'd', note: 'z' },
    { id: 5, name: 'e', note: 'none' },
    { id: 6, name: 'f', note: 'none' },
  ]);
  assert.equal(compiles(), 3, 'one compile for each of the three shapes');
  await db.destroy();
});

test('parameters not in the order Kysely binds them are never cached: every query of that shape is compiled', async () => {
  const { db, insert, all, compiles } = await table();
  await insert([{ id: 1, name: 'a', note: 'x' }], ['a', 1, 'x']);
  await insert([{ id: 2, name: 'b', note: 'y' }], ['b', 2, 'y']);
  assert.deepEqual(await all(), [
    { id: 1, name: 'a', note: 'x' },
    { id: 2, name: 'b', note: 'y' },
  ]);
  assert.equal(compiles(), 2);
  await db.destroy();
});

test('two databases keep their own SQL for one shape', async () => {
  const first = await table();
  const second = await table();
  await first.insert([{ id: 1, name: 'a', note: 'x' }], [1, 'a', 'x']);
  await second.insert([{ id: 1, name: 'b', note: 'y' }], [1, 'b', 'y']);
  assert.deepEqual(await first.all(), [{ id: 1, name: 'a', note: 'x' }]);
  assert.deepEqual(await second.all(), [{ id: 1, name: 'b', note: 'y' }]);
  assert.deepEqual([first.compiles(), second.compiles()], [1, 1]);
  await first.db.destroy();
  await second.db.destroy();
});
