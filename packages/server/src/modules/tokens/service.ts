import { type ApiToken, type ApiTokenCreate, MusterError, type PageResult, type Role } from '@muster/contract';
import { authorizeTokenCreate, authorizeTokenRevoke, mayManageToken, type Principal, tokenListScope } from '../../platform/auth/policy.ts';
import { newId, now } from '../../platform/crypto/ids.ts';
import { newApiToken, sha256Hex } from '../../platform/crypto/secrets.ts';
import { defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { ApiTokenRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { parseDuration } from '../../platform/time/duration.ts';
import { childTokens, findTokenBySecretHash, findTokenRow, insertToken, revokeTokens, tokenRows, touchToken } from './store.ts';

function toApiToken(row: ApiTokenRow): ApiToken {
  const { token_hash: _hash, parent_id: _parent, ...rest } = row;
  return { ...rest, role: row.role as Role };
}

// last_used_at is written at most once a minute per token, not on every request.
const lastUsedResolutionMs = 60_000;

export class TokenService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
  }

  /** Creates a token for the caller; its role is at most the caller's. The secret is returned only here. */
  async create(principal: Principal, input: ApiTokenCreate): Promise<ApiToken & { token: string }> {
    const role = input.role ?? principal.role;
    authorizeTokenCreate(principal, role);
    const secret = newApiToken();
    const created = now();
    const row: ApiTokenRow = {
      id: newId('t'),
      user_id: principal.userId,
      name: input.name,
      role,
      token_hash: sha256Hex(secret),
      prefix: secret.slice(0, 10),
      created_at: created,
      expires_at: input.expires_in ? new Date(Date.now() + parseDuration(input.expires_in) * 1000).toISOString() : null,
      last_used_at: null,
      revoked_at: null,
      parent_id: principal.tokenId,
    };
    await this.#tx.run(async (tx) => {
      await insertToken(tx.db, row);
      await tx.emit({ type: 'token.created', actor: principal.actor, data: { token_id: row.id, name: row.name, role } });
    }, 1);
    return { ...toApiToken(row), token: secret };
  }

  /** Admins see every token; others their own. */
  async list(principal: Principal, cursor?: string, limit = defaultPageSize): Promise<PageResult<ApiToken>> {
    const userId = tokenListScope(principal);
    return finishPage(await tokenRows(this.#tx.db, { userId, cursor, limit }), limit, (r) => [r.id], toApiToken);
  }

  /**
   * Revokes a token and every token made with it, at any depth. Nobody acts above their credential's role:
   * a viewer-scoped token of an admin cannot revoke that admin's admin tokens.
   */
  async revoke(principal: Principal, id: string): Promise<ApiToken> {
    const row = await findTokenRow(this.#tx.db, id);
    if (!row || !mayManageToken(principal, row)) {
      throw new MusterError('not_found', `No token ${id}`);
    }
    authorizeTokenRevoke(principal, row);
    const revokedAt = row.revoked_at ?? now();
    await this.#tx.run(async (tx) => {
      await revokeTokens(tx.db, [id], revokedAt);
      await tx.emit({ type: 'token.revoked', actor: principal.actor, data: { token_id: id, name: row.name } });
      // Tokens made with this one go too, however deep; each is an event of its own.
      for (let parents = [id]; parents.length > 0; ) {
        const children = await childTokens(tx.db, parents);
        const live = children.filter((child) => !child.revoked_at);
        if (live.length > 0) {
          await revokeTokens(
            tx.db,
            live.map((c) => c.id),
            revokedAt,
          );
          for (const child of live) {
            await tx.emit({
              type: 'token.revoked',
              actor: principal.actor,
              reason: 'the token that created it was revoked',
              data: { token_id: child.id, name: child.name, parent_id: id },
            });
          }
        }
        parents = children.map((child) => child.id);
      }
    }, 1);
    return toApiToken({ ...row, revoked_at: revokedAt });
  }

  /** Finds the live token for a secret and notes its use; null when unknown, revoked or expired. */
  async resolve(secret: string): Promise<{ row: ApiTokenRow; username: string; userRole: Role } | null> {
    const found = await findTokenBySecretHash(this.#tx.db, sha256Hex(secret));
    if (!found || found.revoked_at || (found.expires_at && found.expires_at <= now())) return null;
    const time = Date.now();
    if (!found.last_used_at || time - Date.parse(found.last_used_at) > lastUsedResolutionMs) {
      await touchToken(this.#tx.db, found.id, new Date(time).toISOString());
    }
    const { username, user_role, ...row } = found;
    return { row, username, userRole: user_role as Role };
  }
}
