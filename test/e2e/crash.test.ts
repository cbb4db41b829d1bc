import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.ts';
import { enrollBody, json } from '../support/harness.ts';
import { exited, spawnServer } from '../support/process.ts';

const total = 1000;
const inFlight = 200;
const killAfterAcks = 250;

async function storedMachineIds(database: TestDatabase): Promise<Set<string>> {
  if (database.kind === 'sqlite') {
    const db = new DatabaseSync(join(database.dataDir, 'muster.db'));
    const rows = db.prepare("select m.id from machines m join identifiers i on i.machine_id = m.id and i.kind = 'serial'").all();
    db.close();
    return new Set(rows.map((r) => String(r.id)));
  }
  const client = new pg.Client({ connectionString: database.databaseUrl });
  await client.connect();
  const { rows } = await client.query("select m.id from machines m join identifiers i on i.machine_id = m.id and i.kind = 'serial'");
  await client.end();
  return new Set(rows.map((r) => r.id as string));
}

for (const kind of databaseKinds) {
  describe(`kill -9 during enrollments [${kind}]`, () => {
    let database: TestDatabase;
    after(() => database?.drop());

    test(`no enrollment answered 2xx is lost when the server is killed amid ${total} concurrent ones`, async () => {
      database = await createTestDatabase(kind);
      const env = { DATABASE_URL: database.databaseUrl };
      const server = await spawnServer(database.dataDir, env);
      const acknowledged: string[] = [];
      let next = 0;
      let killed = false;
      const worker = async () => {
        while (next < total) {
          const body = enrollBody(next++);
          try {
            const reply = await fetch(`${server.url}/api/v1/enroll`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(body),
            });
            const machine = await json(reply);
            if (reply.ok) acknowledged.push(machine.id);
          } catch {
            // Cut off by the kill: not acknowledged, so it may or may not have been kept.
          }
          if (!killed && acknowledged.length >= killAfterAcks) {
            killed = true;
            server.child.kill('SIGKILL');
          }
        }
      };
      await Promise.all(Array.from({ length: inFlight }, worker));
      assert.equal(await exited(server.child), 'SIGKILL');
      assert.ok(
        acknowledged.length >= killAfterAcks && acknowledged.length < total,
        `killed mid-way (${acknowledged.length} acknowledged)`,
      );

      const stored = await storedMachineIds(database);
      const lost = acknowledged.filter((id) => !stored.has(id));
      assert.deepEqual(lost, []);

      const restarted = await spawnServer(database.dataDir, env);
      restarted.child.kill('SIGTERM');
      assert.equal(await exited(restarted.child), 0);
    });
  });
}
