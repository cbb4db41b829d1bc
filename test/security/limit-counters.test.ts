// The counters behind the failed-login, wrong-claim and discovery limits (issue 17, finding 6): one contract, kept
// in memory on SQLite and in PostgreSQL for replicas. Each suite runs on both; two "replicas" are two sets of
// counters on one database. Times are given, never waited for.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { type Db, openDatabase } from '../../packages/server/src/platform/db/connect.ts';
import { migrateToLatest } from '../../packages/server/src/platform/db/migrations.ts';
import type { BudgetExceeded } from '../../packages/server/src/platform/limits/budget.ts';
import { type Limits, limitsFor } from '../../packages/server/src/platform/limits/counters.ts';
import type { SharedFailureCounter } from '../../packages/server/src/platform/limits/shared.ts';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.ts';

const t0 = Date.parse('2026-01-01T00:00:00Z');
const unexpected = (error: unknown) => assert.fail(`counter error: ${error}`);

/** Makes a counter on each of two replicas; on SQLite there is one server, and both are the same counter. */
type OnBoth = <T>(make: (limits: Limits) => T) => [T, T];

/** Two replicas' limits on one fresh database. */
function onEachDatabase(title: string, suite: (both: OnBoth, db: () => Db) => void, kinds = databaseKinds) {
  for (const kind of kinds) {
    describe(`${title} [${kind === 'sqlite' ? 'memory' : 'postgres'}]`, () => {
      let database: TestDatabase;
      let db: Db;
      let replicas: [Limits, Limits];
      before(async () => {
        database = await createTestDatabase(kind);
        db = openDatabase(
          database.databaseUrl
            ? { dialect: 'postgres', url: database.databaseUrl }
            : { dialect: 'sqlite', path: `${database.dataDir}/muster.db` },
        );
        await migrateToLatest(db.kysely, db.dialect);
        const one = limitsFor(db, unexpected);
        replicas = [one, kind === 'sqlite' ? one : limitsFor(db, unexpected)];
      });
      after(async () => {
        for (const limits of replicas ?? []) await limits.close();
        await db?.close();
        await database?.drop();
      });
      const both: OnBoth = (make) => {
        const one = make(replicas[0]);
        return [one, replicas[1] === replicas[0] ? one : make(replicas[1])];
      };
      suite(both, () => db);
    });
  }
}

onEachDatabase('failure counters', (both) => {
  test('failures on either replica add up: at the limit a key waits until its oldest failure is a window old', async () => {
    const [one, two] = both((limits) => limits.failures('login', 3, 60_000));
    await one.fail(['ip:a'], t0);
    await two.fail(['ip:a'], t0 + 10_000);
    assert.deepEqual(await one.standing(['ip:a', 'ip:b'], t0 + 10_000), [
      { failures: 2, retryAfter: 0 },
      { failures: 0, retryAfter: 0 },
    ]);
    await one.fail(['ip:a'], t0 + 20_000);
    assert.deepEqual(await two.standing(['ip:a'], t0 + 20_000), [{ failures: 3, retryAfter: 40 }]);
    // The window slides: the first failure ages out at t0 + 60 s, and the key may try again.
    assert.deepEqual(await two.standing(['ip:a'], t0 + 59_999), [{ failures: 3, retryAfter: 1 }]);
    assert.deepEqual(await one.standing(['ip:a'], t0 + 60_000), [{ failures: 2, retryAfter: 0 }]);
    assert.deepEqual(await one.standing(['ip:a'], t0 + 80_000), [{ failures: 0, retryAfter: 0 }]);
  });

  test('forgiving a key on one replica clears it on both; scopes and other keys are not touched', async () => {
    const [login, loginTwo] = both((limits) => limits.failures('login', 2, 60_000));
    const [, claim] = both((limits) => limits.failures('claim', 2, 60_000));
    await login.fail(['pair:x', 'ip:x'], t0);
    await login.fail(['pair:x', 'ip:x'], t0 + 1);
    await claim.fail(['pair:x'], t0);
    await login.forgive('pair:x');
    assert.deepEqual(await loginTwo.standing(['pair:x', 'ip:x'], t0 + 2), [
      { failures: 0, retryAfter: 0 },
      { failures: 2, retryAfter: 60 },
    ]);
    assert.deepEqual(await claim.standing(['pair:x'], t0 + 2), [{ failures: 1, retryAfter: 0 }]);
  });

  test('failures in the same millisecond all count', async () => {
    const [one, two] = both((limits) => limits.failures('claim', 5, 60_000));
    await Promise.all([one.fail(['10.0.0.9'], t0), two.fail(['10.0.0.9'], t0), one.fail(['10.0.0.9'], t0)]);
    assert.deepEqual(await two.standing(['10.0.0.9'], t0), [{ failures: 3, retryAfter: 0 }]);
  });
});

onEachDatabase('minute budgets', (both) => {
  test('admissions alternating over both replicas stop at the budget; the window renews a minute after it began', async () => {
    const reports: BudgetExceeded[] = [];
    const [one, two] = both((limits) => limits.budget('discovery', 5, (exceeded) => reports.push(exceeded)));
    const answers: boolean[] = [];
    for (let n = 0; n < 8; n++) answers.push(await (n % 2 ? two : one).admit('enroll', t0 + n));
    assert.deepEqual(answers, [true, true, true, true, true, false, false, false]);
    assert.deepEqual([one.retryAfter(t0 + 30_000), two.retryAfter(t0 + 59_500)], [30, 1]);
    await waitFor(() => reports.length > 0);
    assert.deepEqual(reports, [{ door: 'enroll', limit: 5, window_started_at: '2026-01-01T00:00:00.000Z' }]);
    assert.deepEqual([await two.admit('ipxe', t0 + 60_000), await one.admit('ipxe', t0 + 60_001)], [true, true]);
  });

  test('50 admissions at once over both replicas: exactly the budget of 20 is admitted', async () => {
    const [one, two] = both((limits) => limits.budget('burst', 20));
    const answers = await Promise.all(Array.from({ length: 50 }, async (_, n) => (n % 2 ? two : one).admit('ipxe', t0)));
    assert.equal(answers.filter(Boolean).length, 20);
  });

  test('a budget of 0 admits everything and never asks the database', async () => {
    const [one] = both((limits) => limits.budget('unlimited', 0));
    assert.deepEqual(
      Array.from({ length: 1000 }, () => one.admit('enroll', t0)),
      Array.from({ length: 1000 }, () => true),
    );
  });
});

onEachDatabase(
  'shared counters on PostgreSQL only',
  (both, db) => {
    const rows = async (table: 'limit_failures' | 'limit_budgets') =>
      Number((await db().kysely.selectFrom(table).select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()).n);

    test('a replica reserves 1% of a large budget at once and admits from it without asking; grants add up to the budget exactly', async () => {
      const [one, two] = both((limits) => limits.budget('large', 1000));
      assert.equal(await one.admit('enroll', t0), true, 'reserves a chunk of 10');
      const inHand = Array.from({ length: 9 }, () => one.admit('enroll', t0));
      assert.deepEqual(
        inHand,
        Array.from({ length: 9 }, () => true),
        'answered at once, no promise: no round trip',
      );
      let admittedByTwo = 0;
      while (await two.admit('enroll', t0 + 1)) admittedByTwo++;
      assert.equal(admittedByTwo, 990);
      assert.equal(await one.admit('enroll', t0 + 2), false);
      const row = () => db().kysely.selectFrom('limit_budgets').selectAll().where('scope', '=', 'large').executeTakeFirstOrThrow();
      // Each replica asked once more and got nothing; the first to be refused marked the window reported.
      await waitFor(async () => (await row()).reported === 1);
      assert.deepEqual(await row(), { scope: 'large', window_start: t0, window_end: t0 + 60_000, reserved: 1020, reported: 1 });
    });

    test('a chunk left over from an ended window is not used in the next', async () => {
      const [one, two] = both((limits) => limits.budget('leftover', 200));
      assert.equal(await one.admit('enroll', t0), true, 'one of a chunk of 2 used, one left');
      let admitted = 0;
      while (await two.admit('enroll', t0 + 60_000)) admitted++;
      assert.equal(admitted, 200, 'the new window is whole for the other replica');
      assert.equal(await one.admit('enroll', t0 + 60_001), false, 'the leftover of the old window is gone');
    });

    test('failure rows expire with their window and are pruned, also under a spray of 2,000 sources', async () => {
      const [counter] = both((limits) => limits.failures('claim', 10, 60_000) as SharedFailureCounter);
      for (let n = 0; n < 20; n++)
        await counter.fail(
          Array.from({ length: 100 }, (_, i) => `10.${n}.0.${i}`),
          t0 + 1000 + n,
        );
      assert.equal(await rows('limit_failures'), 2000);
      assert.equal(await counter.prune(t0 + 60_999), 0, 'nothing within its window is pruned');
      assert.equal(await counter.prune(t0 + 61_019), 2000);
      assert.equal(await rows('limit_failures'), 0);
      // A failure more than 10 s after the last prune prunes by itself: the spray is gone, the new failure stays.
      for (let n = 0; n < 20; n++)
        await counter.fail(
          Array.from({ length: 100 }, (_, i) => `10.${n}.1.${i}`),
          t0 + 120_000,
        );
      await counter.fail(['10.9.9.9'], t0 + 200_000);
      await waitFor(async () => (await rows('limit_failures')) === 1);
      assert.deepEqual(await counter.standing(['10.9.9.9', '10.0.1.0'], t0 + 200_000), [
        { failures: 1, retryAfter: 0 },
        { failures: 0, retryAfter: 0 },
      ]);
    });

    test('budgets keep one row each, renewed in place', async () => {
      const [budget] = both((limits) => limits.budget('renewed', 3));
      for (let minute = 0; minute < 5; minute++) assert.equal(await budget.admit('enroll', t0 + minute * 60_000), true);
      const row = await db().kysely.selectFrom('limit_budgets').selectAll().where('scope', '=', 'renewed').executeTakeFirstOrThrow();
      assert.deepEqual(row, { scope: 'renewed', window_start: t0 + 4 * 60_000, window_end: t0 + 5 * 60_000, reserved: 1, reported: 0 });
    });
  },
  databaseKinds.filter((kind) => kind === 'postgres'),
);

/** Polls until `ready` holds; the test's own timeout bounds it. */
async function waitFor(ready: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await ready()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('condition not reached');
}
