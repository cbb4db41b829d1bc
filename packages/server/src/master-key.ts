import { randomBytes } from 'node:crypto';
import { MusterError } from '@muster/contract';
import type { Config } from './config/load.ts';
import { type Keyring, KeyringError, sealedKeyId } from './platform/crypto/keyring.ts';
import { type Db, openDatabase } from './platform/db/connect.ts';
import { EventBus } from './platform/db/event-bus.ts';
import { migrateToLatest } from './platform/db/migrations.ts';
import { listSealedSecrets, resealSecrets } from './platform/db/settings.ts';
import { Transactor } from './platform/db/transact.ts';
import { type LoadedKeyring, loadKeyring, writeKeyFile } from './platform/files/master-key.ts';

// `muster master-key show|rotate` (docs/secrets.md): they open the database themselves, like `muster backup`.

export interface MasterKeyReport {
  /** MUSTER_MASTER_KEY or the key file's path. */
  origin: string;
  /** The ids of the keys this server has, the sealing one first. Never the keys. */
  keys: string[];
  /** Each sealed secret in the database and the id of the key it is sealed with. */
  secrets: { name: string; key: string | null }[];
}

export async function describeMasterKey(config: Config): Promise<MasterKeyReport> {
  const { keyring, origin } = keyringOf(config, false);
  return withDb(config, async (db) => ({
    origin,
    keys: keyring.ids,
    secrets: (await listSealedSecrets(db.kysely)).map((row) => ({ name: row.key, key: sealedKeyId(row.value) })),
  }));
}

export interface RotationReport {
  origin: string;
  from: string[];
  to: string;
  resealed: { name: string; from: string | null }[];
}

/**
 * Seals every secret again under a new master key. With the key file: a new key is made and written first beside
 * the old ones (so that a crash at any point leaves every secret openable), the secrets are re-sealed in one
 * transaction, then the file keeps the new key only. With MUSTER_MASTER_KEY: the operator puts the new key first
 * (NEW,OLD), runs this, then sets NEW alone on every server.
 */
export async function rotateMasterKey(config: Config): Promise<RotationReport> {
  const loaded = keyringOf(config);
  let keyring: Keyring;
  if (config.masterKey) {
    if (loaded.keyring.ids.length < 2) {
      throw new MusterError(
        'bad_request',
        'MUSTER_MASTER_KEY holds one key: put the new key first (MUSTER_MASTER_KEY=NEW,OLD; make one with: openssl rand -base64 32), run this again, then give every server MUSTER_MASTER_KEY=NEW',
      );
    }
    keyring = loaded.keyring;
  } else {
    keyring = loaded.keyring.withCurrent(randomBytes(32));
    writeKeyFile(config.masterKeyFile, keyring);
  }
  const resealed = await withDb(config, (db) =>
    new Transactor(db, new EventBus()).run(async (tx) => {
      const rows = await resealSecrets(tx.db, keyring);
      await tx.emit({
        type: 'master_key.rotated',
        actor: 'cli',
        // Machine secrets are one per machine: the event counts them rather than naming thousands.
        data: {
          from: sealedWith(rows),
          to: keyring.currentId,
          secrets: rows.map((r) => r.key).filter((key) => !key.startsWith('machine_secret:')),
          machine_secrets: rows.filter((r) => r.key.startsWith('machine_secret:')).length,
        },
      });
      return rows;
    }),
  ).catch(async (error) => {
    throw error instanceof KeyringError ? new MusterError('bad_request', error.message) : error;
  });
  if (!config.masterKey) writeKeyFile(config.masterKeyFile, keyring.currentOnly());
  return {
    origin: loaded.origin,
    from: sealedWith(resealed),
    to: keyring.currentId,
    resealed: resealed.map((r) => ({ name: r.key, from: r.from })),
  };
}

/** The ids of the keys the secrets were sealed with before, each once. */
function sealedWith(rows: { from: string | null }[]): string[] {
  return [...new Set(rows.flatMap((r) => (r.from ? [r.from] : [])))];
}

function keyringOf(config: Config, create = true): LoadedKeyring {
  try {
    return loadKeyring({ env: config.masterKey, file: config.masterKeyFile }, { create });
  } catch (error) {
    throw error instanceof KeyringError ? new MusterError('bad_request', error.message) : error;
  }
}

async function withDb<T>(config: Config, run: (db: Db) => Promise<T>): Promise<T> {
  const db = openDatabase(config.database, { poolSize: 2, sync: config.sqliteSync });
  try {
    await migrateToLatest(db.kysely, db.dialect);
    return await run(db);
  } finally {
    await db.close();
  }
}
