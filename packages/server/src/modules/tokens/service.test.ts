import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Role } from '@muster/contract';
import type { Principal } from '../../platform/auth/policy.ts';
import { type Scratch, scratchDatabase } from '../../platform/db/scratch.ts';
import { UserService } from '../users/service.ts';
import { TokenService } from './service.ts';

let s: Scratch;
let tokens: TokenService;
let admin: Principal;
before(async () => {
  s = await scratchDatabase();
  tokens = new TokenService(s.tx);
  const user = await new UserService(s.tx).create('test', { username: 'ada', password: 'a long enough password', role: 'admin' });
  admin = { userId: user.id, username: 'ada', role: 'admin', tokenId: null, actor: 'user:ada' };
});
after(() => s.close());

/** The principal a token resolves to, as the HTTP edge would build it. */
async function principalOf(secret: string): Promise<Principal> {
  const found = await tokens.resolve(secret);
  assert.ok(found, 'the token resolves');
  return {
    userId: found.row.user_id,
    username: found.username,
    role: found.row.role as Role,
    tokenId: found.row.id,
    actor: `token:${found.row.name}`,
  };
}

test('a secret is stored only as its hash and resolves to its token and user', async () => {
  const created = await tokens.create(admin, { name: 'ci', expires_in: '1h' });
  const row = await s.db.kysely.selectFrom('api_tokens').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow();
  assert.notEqual(row.token_hash, created.token);
  assert.ok(!JSON.stringify(row).includes(created.token));
  const principal = await principalOf(created.token);
  assert.deepEqual([principal.userId, principal.role], [admin.userId, 'admin']);
  assert.equal(await tokens.resolve(`${created.token}x`), null);
});

test('revoking a token revokes every token made with it, however deep, each with its event', async () => {
  const parent = await tokens.create(admin, { name: 'parent', role: 'operator' });
  const child = await tokens.create(await principalOf(parent.token), { name: 'child', role: 'viewer' });
  const grandchild = await tokens.create(await principalOf(child.token), { name: 'grandchild' });
  assert.equal(grandchild.role, 'viewer', 'a token made with a viewer token is a viewer token');
  await tokens.revoke(admin, parent.id);
  for (const secret of [parent.token, child.token, grandchild.token]) assert.equal(await tokens.resolve(secret), null);
  const revoked = s.events.filter((e) => e.type === 'token.revoked').map((e) => e.data?.name);
  assert.deepEqual(revoked, ['parent', 'child', 'grandchild']);
});

test('an expired token resolves to nothing', async () => {
  const created = await tokens.create(admin, { name: 'short' });
  await s.tx.run((tx) =>
    tx.db
      .updateTable('api_tokens')
      .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
      .where('id', '=', created.id)
      .execute(),
  );
  assert.equal(await tokens.resolve(created.token), null);
});
