import { Command } from 'commander';
import { addDatabaseOptions, type DatabaseOptions, loadServerPackage, withDatabase } from '../database-options.ts';
import { printJson, printText, renderFields, renderTable } from '../output.ts';
import { wantsJson } from '../session.ts';

// The master key seals the secrets stored in the database (docs/secrets.md). These commands open the database
// themselves, like `muster backup`, and never print a key: only key ids.

export function masterKeyCommand(): Command {
  const command = new Command('master-key').description('the key that seals the secrets stored in the database (ids only, never keys)');
  command.addCommand(
    addDatabaseOptions(new Command('show').description('where the master key comes from, its id, and which key seals each stored secret'))
      .addHelpText('after', '\nExample:\n  muster master-key show --data-dir /var/lib/muster')
      .action(async (options: DatabaseOptions, sub: Command) => {
        const { loadConfig, describeMasterKey } = await loadServerPackage();
        const config = loadConfig({ dataDir: options.dataDir, databaseUrl: options.databaseUrl });
        const report = await withDatabase(() => describeMasterKey(config));
        if (wantsJson(sub)) return printJson(report);
        printText(
          [
            renderFields([
              ['from', report.origin],
              ['sealing key', report.keys[0]],
              ['other keys', report.keys.slice(1)],
            ]),
            '',
            renderTable(
              ['secret', 'sealed with'],
              report.secrets.map((s) => [s.name, s.key]),
            ),
          ].join('\n'),
        );
      }),
  );
  command.addCommand(
    addDatabaseOptions(new Command('rotate').description('seal every stored secret again under a new master key'))
      .addHelpText(
        'after',
        [
          '',
          'With the key file (DATA_DIR/master.key, or MUSTER_MASTER_KEY_FILE), a new key is made and the file keeps it',
          'alone once every secret is sealed again; copy the file to the other replicas and restart them. With',
          'MUSTER_MASTER_KEY, put the new key first (MUSTER_MASTER_KEY=NEW,OLD; make one with openssl rand -base64 32),',
          'run this, then give every server MUSTER_MASTER_KEY=NEW. Running servers keep working until restarted.',
          '',
          'Example:',
          '  muster master-key rotate --data-dir /var/lib/muster',
        ].join('\n'),
      )
      .action(async (options: DatabaseOptions, sub: Command) => {
        const { loadConfig, rotateMasterKey } = await loadServerPackage();
        const config = loadConfig({ dataDir: options.dataDir, databaseUrl: options.databaseUrl });
        const report = await withDatabase(() => rotateMasterKey(config));
        if (wantsJson(sub)) return printJson(report);
        printText(
          `Sealed ${report.resealed.length} secret(s) with master key ${report.to} (was ${report.from.join(', ') || 'none'})${
            config.masterKey
              ? '; now set MUSTER_MASTER_KEY to the new key alone on every server'
              : `; ${report.origin} holds the new key only`
          }`,
        );
      }),
  );
  return command;
}
