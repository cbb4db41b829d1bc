import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Event } from '@muster/contract';
import { openDatabase } from './connect.ts';
import { EventBus } from './event-bus.ts';
import { migrateToLatest } from './migrations.ts';
import { Transactor } from './transact.ts';

test('grouped SQLite units commit together, and a failing unit rolls back alone with its events', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'muster-transact-'));
  const db = openDatabase({ dialect: 'sqlite', path: join(dir, 'muster.db') });
  await migrateToLatest(db.kysely, db.dialect);
  const bus = new EventBus();
  const published: Event[] = [];
  bus.subscribe((event) => published.push(event));
  const transactor = new Transactor(db, bus);
  const time = new Date().toISOString();
  const unit = (name: string, fail: boolean) =>
    transactor.run(async (tx) => {
      await tx.db.insertInto('settings').values({ key: name, value: 'v', updated_at: time }).execute();
      await tx.emit({ type: `test.${name}`, actor: 'test' });
      if (fail) throw new Error(`${name} failed`);
      return name;
    });
  // Started in one turn of the event loop, so they share one transaction.
  const results = await Promise.allSettled([unit('a', false), unit('b', true), unit('c', false)]);
  assert.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    ['a', 'b failed', 'c'],
  );
  const keys = (await db.kysely.selectFrom('settings').select('key').where('key', 'in', ['a', 'b', 'c']).orderBy('key').execute()).map(
    (r) => r.key,
  );
  assert.deepEqual(keys, ['a', 'c']);
  assert.deepEqual(
    published.map((e) => e.type),
    ['test.a', 'test.c'],
  );
  const stored = (await db.kysely.selectFrom('events').select('type').orderBy('id').execute()).map((r) => r.type);
  assert.deepEqual(stored, ['test.a', 'test.c']);
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});
