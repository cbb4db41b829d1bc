import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { loadConfig } from '../../packages/server/src/config/load.ts';
import { migrate } from '../../packages/server/src/serve.ts';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.ts';

// Every migration, in order: a new one is added here too.
const schema = [
  '0001_initial',
  '0002_search',
  '0003_boot',
  '0004_bounded_doors',
  '0005_credentials',
  '0006_pi_serial_case',
  '0007_identity',
  '0008_enrollment_tokens',
  '0009_ip_pools',
  '0010_profiles',
  '0011_claim_keys',
  '0012_shared_limits',
  '0013_pi_serial_prefix',
];
const latest = schema.at(-1);

const made: TestDatabase[] = [];
after(() => Promise.all(made.map((d) => d.drop())));

for (const kind of databaseKinds) {
  test(`migrate applies the schema once and is then up to date [${kind}]`, async () => {
    const database = await createTestDatabase(kind);
    made.push(database);
    const config = loadConfig({ dataDir: database.dataDir, databaseUrl: database.databaseUrl }, {});
    const first = await migrate(config);
    const second = await migrate(config);
    assert.deepEqual([first.applied, first.current], [schema, latest]);
    assert.deepEqual([second.applied, second.current], [[], latest]);
  });
}

if (databaseKinds.includes('postgres')) {
  test('two muster schemas in one PostgreSQL database migrate independently', async () => {
    const [a, b] = await Promise.all([createTestDatabase('postgres'), createTestDatabase('postgres')]);
    made.push(a, b);
    const reports = [];
    for (const database of [a, b])
      reports.push(await migrate(loadConfig({ dataDir: database.dataDir, databaseUrl: database.databaseUrl }, {})));
    assert.deepEqual(
      reports.map((r) => r.applied),
      [schema, schema],
    );
  });
}
