import { MusterError, type Role, roleCovers } from '@muster/contract';

/** Who may do what: the least role for each action. Every route names one of these (or 'public'). */
export const policy = {
  'machine.read': 'viewer',
  'machine.write': 'operator',
  'machine.build': 'operator',
  'fleet.read': 'viewer',
  'fleet.write': 'operator',
  'certificate.revoke': 'operator',
  // Which CA every device trusts, and what it may sign (the CA policy): admin only.
  'ca.read': 'viewer',
  'ca.write': 'admin',
  'group.read': 'viewer',
  'group.write': 'operator',
  'bulk.run': 'operator',
  'job.read': 'viewer',
  'job.write': 'operator',
  'event.read': 'viewer',
  'artifact.read': 'viewer',
  'artifact.write': 'operator',
  'profile.read': 'viewer',
  'profile.write': 'operator',
  // Endpoints decide where hooks may send a machine's secret: only an admin defines them.
  'endpoint.read': 'viewer',
  'endpoint.write': 'admin',
  'machine.stage': 'operator',
  'boot.read': 'viewer',
  'boot.write': 'operator',
  'user.read': 'admin',
  'user.write': 'admin',
  // Your own account and API tokens: every role; the service narrows what a non-admin may change.
  'account.read': 'viewer',
  'account.write': 'viewer',
} as const satisfies Record<string, Role>;

export type Action = keyof typeof policy;
export type RouteAction = Action | 'public';

export interface Principal {
  userId: string;
  username: string;
  role: Role;
  /** Set when the caller used an API token. */
  tokenId: string | null;
  /** How events name this caller: user:alice, token:ci@alice. */
  actor: string;
}

export function can(principal: Principal, action: Action): boolean {
  return roleCovers(principal.role, policy[action]);
}

export function authorize(principal: Principal, action: Action): void {
  if (!can(principal, action)) {
    throw new MusterError('forbidden', `Role ${principal.role} may not ${action.replace('.', ' ')}; it needs ${policy[action]} or more`);
  }
}

// Decisions about one resource, which the role table alone cannot make. Services call them; each throws
// forbidden (or answers false where the caller must not learn that the resource exists).

function isSelf(principal: Principal, userRef: string): boolean {
  return userRef === principal.userId || userRef === principal.username;
}

/** Reading a user: your own account, else user.read. */
export function authorizeUserRead(principal: Principal, userRef: string): void {
  if (!isSelf(principal, userRef)) authorize(principal, 'user.read');
}

/**
 * Changing a user, decided before it is looked up so that a 404 never tells a non-admin who exists: an admin
 * changes anything; anyone else only their own account, and of it only the password. Returns whether the
 * caller changes it as an admin (a non-admin must also give the current password).
 */
export function authorizeUserChange(principal: Principal, userRef: string, patch: { role?: unknown; email?: unknown }): boolean {
  if (can(principal, 'user.write')) return true;
  if (!isSelf(principal, userRef)) authorize(principal, 'user.write');
  if (patch.role !== undefined || patch.email !== undefined) {
    throw new MusterError('forbidden', 'Only an admin may change a role or an email; you may change your own password');
  }
  return false;
}

/** A token can do no more than the credential that makes it. */
export function authorizeTokenCreate(principal: Principal, role: Role): void {
  if (!roleCovers(principal.role, role)) throw new MusterError('forbidden', `A ${principal.role} cannot create a token with role ${role}`);
}

/** Whose tokens a caller lists: everyone's with user.read (undefined), else their own user id. */
export function tokenListScope(principal: Principal): string | undefined {
  return can(principal, 'user.read') ? undefined : principal.userId;
}

/** Whether a caller may see and revoke a token at all: their own, or anyone's with user.write. */
export function mayManageToken(principal: Principal, token: { user_id: string }): boolean {
  return token.user_id === principal.userId || can(principal, 'user.write');
}

/** Revoking needs a credential whose role covers the token's: a viewer token cannot end an admin token. */
export function authorizeTokenRevoke(principal: Principal, token: { role: string }): void {
  if (!roleCovers(principal.role, token.role as Role)) {
    throw new MusterError('forbidden', `A ${principal.role} credential cannot revoke a token with role ${token.role}`);
  }
}
