import { MusterError, type PageResult, type Role, type User, type UserCreate, type UserUpdate } from '@muster/contract';
import { authorizeUserChange, authorizeUserRead, type Principal } from '../../platform/auth/policy.ts';
import { newId, now } from '../../platform/crypto/ids.ts';
import { hashPassword, verifyPassword } from '../../platform/crypto/password.ts';
import { decodeCursor, defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { UserRow } from '../../platform/db/schema.ts';
import { orAlreadyExists, type Transactor } from '../../platform/db/transact.ts';
import { countUsers, deleteUserRow, findUserById, findUserByName, insertUser, listUserRows, updateUserRow } from './store.ts';

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    role: row.role as Role,
    created_at: row.created_at,
    updated_at: row.updated_at,
    last_login_at: row.last_login_at,
  };
}

export class UserService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
  }

  /** Creates a user. `actor` is who did it, for the audit event. */
  async create(actor: string, input: UserCreate): Promise<User> {
    const time = now();
    const row: UserRow = {
      id: newId('u'),
      username: input.username,
      email: input.email ?? '',
      role: input.role,
      password_hash: await hashPassword(input.password),
      created_at: time,
      updated_at: time,
      last_login_at: null,
      session_generation: 0,
    };
    await orAlreadyExists(`A user named ${input.username} already exists`, () =>
      this.#tx.run(async (tx) => {
        await insertUser(tx.db, row);
        await tx.emit({ type: 'user.created', actor, data: { user_id: row.id, username: row.username, role: row.role } });
      }, 1),
    );
    return toUser(row);
  }

  async list(cursor: string | undefined, limit = defaultPageSize, total = false): Promise<PageResult<User>> {
    const after = cursor ? String(decodeCursor(cursor, 1)[0]) : null;
    const rows = await listUserRows(this.#tx.db, after, limit);
    const page = finishPage(rows, limit, (r) => [r.id], toUser);
    return total ? { ...page, total: await countUsers(this.#tx.db) } : page;
  }

  async get(principal: Principal, idOrName: string): Promise<User> {
    authorizeUserRead(principal, idOrName);
    return toUser(await this.#find(idOrName));
  }

  /** Admins change anything; others change only their own password, giving the current one. */
  async update(principal: Principal, idOrName: string, patch: UserUpdate): Promise<User> {
    // Rights are checked before the lookup, so that a 404 never tells a non-admin who exists.
    const isAdmin = authorizeUserChange(principal, idOrName, patch);
    const row = await this.#find(idOrName);
    if (!isAdmin) {
      if (!patch.current_password || !(await verifyPassword(patch.current_password, row.password_hash))) {
        throw new MusterError('validation_failed', 'Give your current password to change it', {
          errors: [{ path: '/current_password', message: 'missing or wrong' }],
        });
      }
    }
    if (patch.role && patch.role !== 'admin' && row.role === 'admin') await this.#keepOneAdmin();
    const changes: Partial<UserRow> = { updated_at: now() };
    if (patch.email !== undefined) changes.email = patch.email;
    if (patch.role !== undefined) changes.role = patch.role;
    if (patch.password !== undefined) {
      changes.password_hash = await hashPassword(patch.password);
      // A new password, set by the user or reset by an admin, ends every session made with the old one.
      changes.session_generation = row.session_generation + 1;
    }
    await this.#tx.run(async (tx) => {
      await updateUserRow(tx.db, row.id, changes);
      const fields = Object.keys(patch).filter((k) => k !== 'current_password');
      await tx.emit({ type: 'user.updated', actor: principal.actor, data: { user_id: row.id, username: row.username, fields } });
    }, 1);
    return toUser({ ...row, ...changes });
  }

  async delete(principal: Principal, idOrName: string): Promise<void> {
    const row = await this.#find(idOrName);
    if (row.role === 'admin') await this.#keepOneAdmin();
    await this.#tx.run(async (tx) => {
      await deleteUserRow(tx.db, row.id);
      await tx.emit({ type: 'user.deleted', actor: principal.actor, data: { user_id: row.id, username: row.username } });
    }, 1);
  }

  async #keepOneAdmin(): Promise<void> {
    if ((await countUsers(this.#tx.db, 'admin')) <= 1) {
      throw new MusterError('conflict', 'This is the last admin; make another admin first');
    }
  }

  async #find(idOrName: string): Promise<UserRow> {
    const row = idOrName.startsWith('u_') ? await findUserById(this.#tx.db, idOrName) : await findUserByName(this.#tx.db, idOrName);
    if (!row) throw new MusterError('not_found', `No user ${idOrName}`);
    return row;
  }
}
