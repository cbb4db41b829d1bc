import { MusterError } from '@muster/contract/errors.ts';
import { settings } from '@muster/server/config/settings.ts';
import type { Command } from 'commander';

/** Flags for commands that open the database themselves (serve, migrate, user create). */
export interface DatabaseOptions {
  dataDir?: string;
  databaseUrl?: string;
}

export function addDatabaseOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', `data directory (env ${settings.data_dir.env.join(' or ')}; default ${settings.data_dir.default})`)
    .option(
      '--database-url <url>',
      `postgres://… or a SQLite file (env ${settings.database_url.env.join(' or ')}; default ${settings.database_url.default})`,
    );
}

/** The server package is loaded only by the commands that need it: API commands start faster without it. */
export function loadServerPackage() {
  return import('@muster/server');
}

const unreachableCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

/** Runs a database command; a database that cannot be reached is exit 6 with a hint, like an unreachable server. */
export async function withDatabase<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { address?: string; port?: number };
    if (!(error instanceof MusterError) && e?.code && unreachableCodes.has(e.code)) {
      const where = e.address ? ` at ${e.address}${e.port ? `:${e.port}` : ''}` : '';
      throw new MusterError('unavailable', `cannot reach the database${where} (${e.code}): check --database-url or DATABASE_URL`);
    }
    throw error;
  }
}
