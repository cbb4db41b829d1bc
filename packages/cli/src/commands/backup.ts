import { Command } from 'commander';
import { addDatabaseOptions, type DatabaseOptions, loadServerPackage } from '../database-options.ts';
import { printJson, printText } from '../output.ts';
import { wantsJson } from '../session.ts';

export function backupCommand(): Command {
  return addDatabaseOptions(
    new Command('backup')
      .description('write a consistent copy of the SQLite database to FILE, also while the server runs')
      .argument('<file>', 'where the copy goes; it must not exist yet (mode 0600)'),
  )
    .addHelpText(
      'after',
      '\nThe copy is one snapshot (VACUUM INTO), checked with PRAGMA integrity_check. Artifacts live beside it in\nDATA_DIR/artifacts and are copied as files. PostgreSQL: use pg_dump (docs/deploy.md).\n\nExample:\n  muster backup /var/backups/muster-$(date +%F).db --data-dir /var/lib/muster',
    )
    .action(async (file: string, options: DatabaseOptions, command: Command) => {
      const { loadConfig, backupSqlite } = await loadServerPackage();
      const config = loadConfig({ dataDir: options.dataDir, databaseUrl: options.databaseUrl });
      const result = backupSqlite(config.database, file);
      if (wantsJson(command)) return printJson(result);
      printText(`Backed up ${result.database} to ${result.file} (${(result.bytes / 1024 / 1024).toFixed(1)} MiB)`);
    });
}
