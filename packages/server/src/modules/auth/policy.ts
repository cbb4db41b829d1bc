import { MusterError, type Role, roleCovers } from '@muster/contract';

/** Who may do what: the least role for each action. Every route names one of these (or 'public'). */
export const policy = {
  'machine.read': 'viewer',
  'machine.write': 'operator',
  'machine.build': 'operator',
  'fleet.read': 'viewer',
  'fleet.write': 'operator',
  'group.read': 'viewer',
  'group.write': 'operator',
  'bulk.run': 'operator',
  'job.read': 'viewer',
  'job.write': 'operator',
  'event.read': 'viewer',
  'artifact.read': 'viewer',
  'artifact.write': 'operator',
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
