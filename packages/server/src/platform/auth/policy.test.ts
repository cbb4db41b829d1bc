import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MusterError, type Role } from '@muster/contract';
import {
  authorize,
  authorizeTokenCreate,
  authorizeTokenRevoke,
  authorizeUserChange,
  authorizeUserRead,
  mayManageToken,
  type Principal,
  policy,
  tokenListScope,
} from './policy.ts';

const as = (role: Role, userId = `u_${role}`): Principal => ({ userId, username: role, role, tokenId: null, actor: `user:${role}` });
const forbidden = (run: () => unknown) => assert.throws(run, (e) => e instanceof MusterError && e.code === 'forbidden');

test('every action needs at least its role in the table, and each higher role has it too', () => {
  const roles: Role[] = ['viewer', 'operator', 'admin'];
  for (const [action, least] of Object.entries(policy) as [keyof typeof policy, Role][]) {
    for (const role of roles) {
      const allowed = roles.indexOf(role) >= roles.indexOf(least);
      if (allowed) authorize(as(role), action);
      else forbidden(() => authorize(as(role), action));
    }
  }
});

test('users: anyone reads their own account; only admins read or change others, or change roles and emails', () => {
  authorizeUserRead(as('viewer'), 'u_viewer');
  authorizeUserRead(as('viewer'), 'viewer');
  forbidden(() => authorizeUserRead(as('operator'), 'u_someone'));
  authorizeUserRead(as('admin'), 'u_someone');

  assert.equal(authorizeUserChange(as('viewer'), 'u_viewer', {}), false, 'a non-admin changes only their own password');
  forbidden(() => authorizeUserChange(as('viewer'), 'u_viewer', { role: 'admin' }));
  forbidden(() => authorizeUserChange(as('operator'), 'viewer', { email: 'x@example.com' }));
  forbidden(() => authorizeUserChange(as('operator'), 'u_someone', {}));
  assert.equal(authorizeUserChange(as('admin'), 'u_someone', { role: 'viewer' }), true);
});

test('tokens: no more than the maker’s role; others’ tokens are not even seen without user.write', () => {
  authorizeTokenCreate(as('operator'), 'viewer');
  authorizeTokenCreate(as('operator'), 'operator');
  forbidden(() => authorizeTokenCreate(as('operator'), 'admin'));

  assert.equal(tokenListScope(as('operator')), 'u_operator');
  assert.equal(tokenListScope(as('admin')), undefined);

  assert.equal(mayManageToken(as('viewer'), { user_id: 'u_viewer' }), true);
  assert.equal(mayManageToken(as('operator'), { user_id: 'u_admin' }), false);
  assert.equal(mayManageToken(as('admin'), { user_id: 'u_operator' }), true);

  authorizeTokenRevoke(as('admin'), { role: 'admin' });
  forbidden(() => authorizeTokenRevoke(as('viewer'), { role: 'operator' }));
});
