import { MusterError, type Role } from '@muster/contract';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';

export interface SessionClaims {
  userId: string;
  role: Role;
  issuedAt: number;
  /** The user's session generation when the session was made; a password change moves the user's on. */
  generation: number;
}

const issuer = 'muster';

export class JwtSigner {
  readonly #key: Uint8Array;
  readonly #expirySeconds: number;

  constructor(secret: string, expirySeconds: number) {
    this.#key = new TextEncoder().encode(secret);
    this.#expirySeconds = expirySeconds;
  }

  async sign(userId: string, role: Role, generation: number): Promise<{ token: string; expiresAt: Date }> {
    const expiresAt = new Date(Date.now() + this.#expirySeconds * 1000);
    const token = await new SignJWT({ role, gen: generation })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(issuer)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.#key);
    return { token, expiresAt };
  }

  async verify(token: string): Promise<SessionClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key, { issuer, algorithms: ['HS256'] });
      const generation = typeof payload.gen === 'number' ? payload.gen : 0;
      return { userId: String(payload.sub), role: payload.role as Role, issuedAt: payload.iat ?? 0, generation };
    } catch (error) {
      const detail =
        error instanceof joseErrors.JWTExpired ? 'The session token has expired; log in again' : 'The session token is not valid';
      throw new MusterError('invalid_token', detail);
    }
  }
}
