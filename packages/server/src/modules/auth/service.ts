import { MusterError, type Role, roleCovers, type User } from '@muster/contract';
import type { Principal } from '../../platform/auth/policy.ts';
import { now } from '../../platform/crypto/ids.ts';
import { decoyHash, verifyPassword } from '../../platform/crypto/password.ts';
import { apiTokenPrefix, randomCode, safeEqual, sha256Hex } from '../../platform/crypto/secrets.ts';
import { readSetting, takeSetting, writeSetting } from '../../platform/db/settings.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import type { TokenService } from '../tokens/service.ts';
import { toUser, type UserService } from '../users/service.ts';
import { anyUserExists, findUserById, findUserByName, updateUserRow } from '../users/store.ts';
import type { JwtSigner } from './jwt.ts';

/** The caller when authentication is turned off (allowed on loopback only). */
export const localPrincipal: Principal = { userId: 'local', username: 'local', role: 'admin', tokenId: null, actor: 'local' };

export class AuthService {
  readonly #tx: Transactor;
  readonly #jwt: JwtSigner;
  readonly #tokens: TokenService;
  readonly #users: UserService;

  constructor(tx: Transactor, jwt: JwtSigner, tokens: TokenService, users: UserService) {
    this.#tx = tx;
    this.#jwt = jwt;
    this.#tokens = tokens;
    this.#users = users;
  }

  async login(username: string, password: string, source = ''): Promise<{ token: string; expires_at: string; user: User }> {
    const row = await findUserByName(this.#tx.db, username);
    const ok = await verifyPassword(password, row?.password_hash ?? decoyHash);
    if (!row || !ok) {
      // An unknown name may be a password typed in the wrong field: it is kept as a short hash, never as text.
      const who = row ? { username: row.username } : { username: null, unknown_username_sha256: sha256Hex(username).slice(0, 16) };
      await this.#tx.run((tx) => tx.emit({ type: 'auth.login_failed', actor: 'anonymous', data: { ...who, source } }), 1);
      throw new MusterError('invalid_credentials', 'Username or password is wrong');
    }
    const time = now();
    await updateUserRow(this.#tx.db, row.id, { last_login_at: time });
    const { token, expiresAt } = await this.#jwt.sign(row.id, row.role as Role, row.session_generation);
    return { token, expires_at: expiresAt.toISOString(), user: toUser({ ...row, last_login_at: time }) };
  }

  /** Resolves a bearer credential (session JWT or API token) to a principal, or throws invalid_token. */
  async authenticate(bearer: string): Promise<Principal> {
    if (bearer.startsWith(apiTokenPrefix)) {
      const found = await this.#tokens.resolve(bearer);
      if (!found) throw new MusterError('invalid_token', 'The API token is unknown, revoked or expired');
      // A token never has more rights than its user has now.
      const role = roleCovers(found.userRole, found.row.role as Role) ? (found.row.role as Role) : found.userRole;
      return {
        userId: found.row.user_id,
        username: found.username,
        role,
        tokenId: found.row.id,
        actor: `token:${found.row.name}@${found.username}`,
      };
    }
    const claims = await this.#jwt.verify(bearer);
    const user = await findUserById(this.#tx.db, claims.userId);
    if (!user) throw new MusterError('invalid_token', 'The session belongs to a user that no longer exists');
    if (user.session_generation !== claims.generation)
      throw new MusterError('invalid_token', 'The session ended when the password changed; log in again');
    return { userId: user.id, username: user.username, role: user.role as Role, tokenId: null, actor: `user:${user.username}` };
  }

  /** Makes a one-time setup code when there is no user yet; returns null when users exist. */
  async issueSetupCode(): Promise<string | null> {
    if (await anyUserExists(this.#tx.db)) return null;
    const code = randomCode(9);
    await writeSetting(this.#tx.db, 'setup_code', sha256Hex(code));
    return code;
  }

  /** Creates the first admin with the setup code; the code works once and only while there is no user. */
  async completeSetup(input: { code: string; username: string; password: string; email?: string }): Promise<User> {
    const stored = await readSetting(this.#tx.db, 'setup_code');
    if (!stored || (await anyUserExists(this.#tx.db)) || !safeEqual(stored, sha256Hex(input.code))) {
      throw new MusterError('forbidden', 'The setup code is wrong or was used; create users with an admin account');
    }
    if (!(await takeSetting(this.#tx.db, 'setup_code', stored))) throw new MusterError('forbidden', 'The setup code was used');
    return this.#users.create('setup', { username: input.username, password: input.password, email: input.email, role: 'admin' });
  }
}
