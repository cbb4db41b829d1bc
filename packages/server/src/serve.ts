import { MusterError, type Role, type User, UserCreate } from '@muster/contract';
import { createMuster } from './app.ts';
import type { Config } from './config/load.ts';
import { UserService } from './modules/users/service.ts';
import { describeTarget, openDatabase } from './platform/db/connect.ts';
import { EventBus } from './platform/db/event-bus.ts';
import { migrateToLatest } from './platform/db/migrations.ts';
import { Transactor } from './platform/db/transact.ts';
import { toMusterError } from './platform/http/problem.ts';
import { validatorCompiler } from './platform/http/validation.ts';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/** `muster serve`: migrates, starts every listener, and tells how to make the first admin when there is none. */
export async function startServer(config: Config): Promise<RunningServer> {
  const started = performance.now();
  const muster = await createMuster(config);
  let url: string;
  try {
    url = await muster.listen();
  } catch (error) {
    await muster.close();
    const e = error as NodeJS.ErrnoException;
    const tftp = e.syscall === 'bind' && config.tftp ? `${config.tftp.host}:${config.tftp.port}` : null;
    const address = tftp ?? `${config.listen.host}:${config.listen.port}`;
    const flag = tftp ? '--tftp-listen' : '--listen';
    if (e.code === 'EADDRINUSE')
      throw new MusterError('unavailable', `${address} is already in use; choose another with ${flag} HOST:PORT`);
    if (e.code === 'EACCES')
      throw new MusterError('unavailable', `no permission to listen on ${address}; use a port above 1023 with ${flag}`);
    throw error;
  }
  muster.app.log.info(
    {
      url,
      tftp: muster.tftpAddress ? `${muster.tftpAddress.address}:${muster.tftpAddress.port}` : 'off',
      https: muster.tlsAddress ? `${muster.tlsAddress.address}:${muster.tlsAddress.port}` : 'off',
      database: describeTarget(config.database),
      auth: config.enableAuth,
      ms: Math.round(performance.now() - started),
    },
    'muster is serving',
  );
  if (!config.enableAuth) muster.app.log.warn('authentication is off: every caller on this host is an admin');
  const code = await muster.auth.issueSetupCode();
  // The code is shown on the terminal only, never through the log.
  if (code) {
    process.stderr.write(
      `\nNo user exists yet. Create the first admin with either:\n` +
        `  muster user create NAME --role admin --password-stdin --data-dir ${config.dataDir}\n` +
        `  curl -X POST ${url}/api/v1/setup -H 'Content-Type: application/json' -d '{"code":"${code}","username":"admin","password":"…"}'\n` +
        `The setup code works once, and only until the first user exists.\n\n`,
    );
  }
  return { url, close: () => muster.close() };
}

/** `muster migrate`: brings the database schema up to date. */
export async function migrate(config: Config): Promise<{ database: string; applied: string[]; current: string | null }> {
  const db = openDatabase(config.database, { poolSize: 1, sync: config.sqliteSync });
  try {
    const report = await migrateToLatest(db.kysely, db.dialect);
    return { database: describeTarget(config.database), ...report };
  } finally {
    await db.close();
  }
}

const checkUserCreate = validatorCompiler({ schema: UserCreate, httpPart: 'body', method: 'POST', url: 'cli' }) as ((
  value: unknown,
) => boolean) & {
  errors?: unknown[];
};

/** `muster user create`: writes a user straight to the database, so the first admin exists before the server runs. */
export async function createUserDirect(
  config: Config,
  input: { username: string; role: Role; password: string; email?: string },
): Promise<User> {
  const body = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  if (!checkUserCreate(body)) throw toMusterError({ validation: checkUserCreate.errors, validationContext: 'body' });
  const db = openDatabase(config.database, { poolSize: 2, sync: config.sqliteSync });
  try {
    await migrateToLatest(db.kysely, db.dialect);
    return await new UserService(new Transactor(db, new EventBus())).create('cli', body as UserCreate);
  } finally {
    await db.close();
  }
}
