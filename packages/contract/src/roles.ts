export const roles = ['admin', 'operator', 'viewer'] as const;
export type Role = (typeof roles)[number];

const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** True when `role` has at least the rights of `atLeast`. */
export function roleCovers(role: Role, atLeast: Role): boolean {
  return rank[role] >= rank[atLeast];
}
