import { Command } from 'commander';
import { addDatabaseOptions, type DatabaseOptions, loadServerPackage, withDatabase } from '../database-options.ts';
import { printJson, printText } from '../output.ts';
import { wantsJson } from '../session.ts';

export function migrateCommand(): Command {
  return addDatabaseOptions(new Command('migrate').description('bring the database schema up to date (serve also does this at start)'))
    .addHelpText('after', '\nExample:\n  muster migrate --database-url postgres://muster@db/muster')
    .action(async (options: DatabaseOptions, command: Command) => {
      const { loadConfig, migrate } = await loadServerPackage();
      const config = loadConfig({ dataDir: options.dataDir, databaseUrl: options.databaseUrl });
      const result = await withDatabase(() => migrate(config));
      if (wantsJson(command)) return printJson(result);
      const at = result.current ? ` (at ${result.current})` : '';
      if (result.applied.length === 0) return printText(`${result.database} is up to date${at}`);
      printText(
        [`Applied ${result.applied.length} migration(s) to ${result.database}${at}:`, ...result.applied.map((m) => `  ${m}`)].join('\n'),
      );
    });
}
