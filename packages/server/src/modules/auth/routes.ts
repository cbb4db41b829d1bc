import { LoginRequest, LoginResponse, MusterError, SetupRequest, User } from '@muster/contract';
import type { App } from '../../platform/http/types.ts';
import type { FailureCounter, FailureStanding } from '../../platform/limits/limiter.ts';
import type { AuthService } from './service.ts';

const tags = ['auth'];

/** The failure counters a login attempt touches: its source, its user, and the user from that source. */
function loginKeys(source: string, username: string) {
  const user = username.normalize('NFKC').toLowerCase();
  return { source: `ip:${source}`, user: `user:${user}`, pair: `pair:${user}@${source}` };
}

/**
 * Seconds a login attempt must wait. A source that keeps failing is throttled, and so is a user being guessed
 * at, but only for sources that have failed themselves: a source with no failures can always log in, so
 * nobody can lock a user out by failing on their behalf from elsewhere.
 */
export function loginWait(source: FailureStanding, pair: FailureStanding, user: FailureStanding): number {
  const own = Math.max(source.retryAfter, pair.retryAfter);
  if (own > 0) return own;
  return source.failures > 0 ? user.retryAfter : 0;
}

export function authRoutes(app: App, auth: AuthService, failures: FailureCounter, me: (userId: string) => Promise<User>): void {
  app.post('/api/v1/login', {
    config: { action: 'public' },
    schema: { tags, summary: 'Log in; returns a session token (JWT)', security: [], body: LoginRequest, response: { 200: LoginResponse } },
    handler: async (request, reply) => {
      const keys = loginKeys(request.ip, request.body.username);
      const [source, pair, user] = await failures.standing([keys.source, keys.pair, keys.user]);
      const wait = loginWait(source, pair, user);
      if (wait > 0) {
        reply.header('retry-after', String(wait));
        throw new MusterError('rate_limited', `Too many failed logins; try again in ${wait} s`);
      }
      // Guesses sent at once count before their outcome is known: the source and the pair take a place each.
      const release = failures.attempt([keys.source, keys.pair], [source, pair]);
      if (!release) {
        reply.header('retry-after', '1');
        throw new MusterError('rate_limited', 'Too many logins under way from this address; try again in 1 s');
      }
      const session = await auth
        .login(request.body.username, request.body.password, request.ip)
        .catch(async (error) => {
          await failures.fail(Object.values(keys)).catch((e) => request.log.error({ err: e }, 'failed login not counted'));
          throw error;
        })
        .finally(release);
      // Only a pair that has failed is forgiven: a correct login writes nothing.
      if (pair.failures > 0) await failures.forgive(keys.pair);
      return session;
    },
  });

  app.post('/api/v1/setup', {
    config: { action: 'public' },
    schema: {
      tags,
      summary: 'Create the first admin with the one-time setup code printed at first start',
      security: [],
      body: SetupRequest,
      response: { 201: User },
    },
    handler: async (request, reply) => reply.status(201).send(await auth.completeSetup(request.body)),
  });

  app.get('/api/v1/me', {
    config: { action: 'account.read' },
    schema: { tags, summary: 'The user behind the token', response: { 200: User } },
    handler: (request) => me(request.principal.userId),
  });
}
