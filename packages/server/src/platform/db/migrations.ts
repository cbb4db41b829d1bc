// biome-ignore-all lint/suspicious/noExplicitAny: migrations run before the typed schema exists
import { isPiSerial, normalizeSerial } from '@muster/contract';
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { Dialect } from './connect.ts';

/** One migration set for both databases; the only difference is how the event id is generated. */
function initial(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('email', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('last_login_at', 'text')
        .execute();

      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('prefix', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema.createIndex('api_tokens_user').on('api_tokens').column('user_id').execute();

      await db.schema
        .createTable('fleets')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('next_seq', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('machines')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('hostname', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('service_tag', 'text')
        .addColumn('mac_address', 'text')
        .addColumn('fleet_id', 'text', (c) => c.references('fleets.id'))
        .addColumn('fleet_seq', 'integer')
        .addColumn('facts', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('nixos_config', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('enrolled_at', 'text')
        .addColumn('last_seen_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      // Only filter and common-sort columns: every index is upkeep on each enrollment. created_at sorts as the id does.
      for (const column of ['state', 'fleet_id', 'hostname']) {
        await db.schema.createIndex(`machines_${column}`).on('machines').columns([column, 'id']).execute();
      }
      // Lists of one state sorted by name (what a dashboard shows) read this index in order.
      await db.schema.createIndex('machines_state_hostname').on('machines').columns(['state', 'hostname', 'id']).execute();

      await db.schema
        .createTable('machine_labels')
        .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('machine_labels_pk', ['machine_id', 'key'])
        .execute();
      await db.schema.createIndex('machine_labels_key_value').on('machine_labels').columns(['key', 'value', 'machine_id']).execute();

      await db.schema
        .createTable('identifiers')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('identifiers_pk', ['kind', 'value'])
        .execute();
      await db.schema.createIndex('identifiers_machine').on('identifiers').column('machine_id').execute();

      await db.schema
        .createTable('groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('group_members')
        .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id').onDelete('cascade'))
        .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
        .addColumn('added_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'machine_id'])
        .execute();
      await db.schema.createIndex('group_members_machine').on('group_members').column('machine_id').execute();

      await db.schema
        .createTable('events')
        .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('machine_id', 'text')
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('data', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('events_machine').on('events').columns(['machine_id', 'id']).execute();
      await db.schema.createIndex('events_type').on('events').columns(['type', 'id']).execute();

      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('machine_id', 'text')
        .addColumn('payload', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('run_at', 'text', (c) => c.notNull())
        .addColumn('locked_by', 'text')
        .addColumn('locked_until', 'text')
        .addColumn('error', 'text')
        .addColumn('log', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('jobs_state_run_at').on('jobs').columns(['state', 'run_at']).execute();
      await db.schema.createIndex('jobs_machine').on('jobs').columns(['machine_id', 'id']).execute();

      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('idempotency_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('request_hash', 'text', (c) => c.notNull())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('response', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['user_id', 'key'])
        .execute();
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/**
 * Trigram indexes for the free-text machine search (part of a hostname or identifier). SQLite: FTS5 tables
 * over identifiers.value and machines.hostname, kept in step by triggers. PostgreSQL: pg_trgm GIN indexes,
 * when the extension can be installed; without them the search still works, by scanning.
 */
function search(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<any>) {
      if (dialect === 'sqlite') {
        for (const [table, column] of [
          ['identifiers', 'value'],
          ['machines', 'hostname'],
        ]) {
          const fts = `${table}_search`;
          // Empty values (a machine without a hostname) are left out: most machines arrive without one.
          const statements = [
            `create virtual table ${fts} using fts5(${column}, content='${table}', content_rowid='rowid', tokenize='trigram')`,
            `insert into ${fts}(${fts}) values ('rebuild')`,
            `create trigger ${fts}_insert after insert on ${table} when new.${column} <> '' begin
              insert into ${fts}(rowid, ${column}) values (new.rowid, new.${column}); end`,
            `create trigger ${fts}_delete after delete on ${table} when old.${column} <> '' begin
              insert into ${fts}(${fts}, rowid, ${column}) values ('delete', old.rowid, old.${column}); end`,
            // One trigger, so that the old entry goes before the new one comes (SQLite orders triggers as it likes).
            `create trigger ${fts}_update after update of ${column} on ${table} begin
              insert into ${fts}(${fts}, rowid, ${column}) select 'delete', old.rowid, old.${column} where old.${column} <> '';
              insert into ${fts}(rowid, ${column}) select new.rowid, new.${column} where new.${column} <> ''; end`,
          ];
          for (const statement of statements) await sql.raw(statement).execute(db);
        }
        return;
      }
      await sql`savepoint trigram`.execute(db);
      try {
        // In public, not in muster's schema: several muster schemas may share the database and its extension.
        await sql`create extension if not exists pg_trgm with schema public`.execute(db);
        await sql`release savepoint trigram`.execute(db);
      } catch {
        // No right to install it (search then scans), or another server installed it at the same moment.
        await sql`rollback to savepoint trigram`.execute(db);
      }
      // The operator class lives in the extension's schema, which need not be on this connection's path.
      const { rows } = await sql<{
        schema: string;
      }>`select extnamespace::regnamespace::text as schema from pg_extension where extname = 'pg_trgm'`.execute(db);
      if (rows.length === 0) return;
      const ops = sql.raw(`${rows[0].schema}.gin_trgm_ops`);
      await sql`create index identifiers_value_trgm on identifiers using gin (lower(value) ${ops})`.execute(db);
      await sql`create index machines_hostname_trgm on machines using gin (lower(hostname) ${ops})`.execute(db);
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/**
 * Network boot (docs/boot.md): content-addressed artifacts and the names they are published under, Pi boot
 * trees, the rules that place unseen machines, iPXE script templates, and the boot timeline.
 */
function boot(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('artifacts')
        .addColumn('sha256', 'text', (c) => c.primaryKey())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('artifact_names')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('sha256', 'text', (c) => c.notNull().references('artifacts.sha256'))
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('artifact_names_sha256').on('artifact_names').column('sha256').execute();
      await db.schema
        .createTable('pi_trees')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('files', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('rules')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(100))
        .addColumn('door', 'text', (c) => c.notNull().defaultTo('any'))
        .addColumn('serial_pattern', 'text')
        .addColumn('mac_prefix', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('pi_tree', 'text', (c) => c.references('pi_trees.name'))
        .addColumn('labels', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.alterTable('machines').addColumn('pi_tree', 'text').execute();
      await db.schema
        .createTable('boot_scripts')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('boot_sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
        .addColumn('door', 'text', (c) => c.notNull())
        .addColumn('client', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('last_at', 'text', (c) => c.notNull())
        .addColumn('requests', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('errors', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('boot_sessions_machine').on('boot_sessions').columns(['machine_id', 'last_at']).execute();
      await db.schema
        .createTable('boot_requests')
        .addColumn('session_id', 'text', (c) => c.notNull().references('boot_sessions.id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('door', 'text', (c) => c.notNull())
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('bytes', 'bigint', (c) => c.notNull())
        .addColumn('duration_ms', 'integer', (c) => c.notNull())
        .addColumn('error', 'text')
        .addPrimaryKeyConstraint('boot_requests_pk', ['session_id', 'seq'])
        .execute();
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/**
 * Bounded boot doors (docs/security.md): a request repeated in a row is one boot_requests row with a count
 * and the time of its last repeat.
 */
function boundedDoors(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .alterTable('boot_requests')
        .addColumn('count', 'integer', (c) => c.notNull().defaultTo(1))
        .execute();
      await db.schema.alterTable('boot_requests').addColumn('last_at', 'text').execute();
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/** Credentials that end when what made them ends: a token's parent token, a user's session generation. */
function credentials(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('api_tokens').addColumn('parent_id', 'text').execute();
      await db.schema.createIndex('api_tokens_parent').on('api_tokens').column('parent_id').execute();
      await db.schema
        .alterTable('users')
        .addColumn('session_generation', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/**
 * Serials of the Pi's hex form are stored lower-case (normalizeSerial in the contract), as the Pi asks for them.
 * One stored in upper case before is lowered, unless its lower-case form is already another machine's: such a
 * pair is two machines, which only an operator can merge, and stays as it is.
 */
function piSerialCase(): Migration {
  return {
    async up(db: Kysely<any>) {
      const rows: { value: string }[] = await db.selectFrom('identifiers').select('value').where('kind', '=', 'serial').execute();
      const taken = new Set(rows.map((r) => r.value));
      for (const { value } of rows) {
        const lower = value.toLowerCase();
        if (lower === value || !isPiSerial(value) || taken.has(lower)) continue;
        await db.updateTable('identifiers').set({ value: lower }).where('kind', '=', 'serial').where('value', '=', value).execute();
        taken.add(lower);
      }
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/**
 * A Pi 3 or 4 serial stored in its 16-digit form (`10000000dca63201`) becomes the 8 digits its bootloader asks with
 * (normalizeSerial in the contract), in the identifier and the machine's serial column. One whose short form is
 * already another machine's stays as it is: two machines, which only an operator can merge.
 */
function piSerialPrefix(): Migration {
  return {
    async up(db: Kysely<any>) {
      const rows: { value: string; machine_id: string }[] = await db
        .selectFrom('identifiers')
        .select(['value', 'machine_id'])
        .where('kind', '=', 'serial')
        .execute();
      const taken = new Set(rows.map((r) => r.value));
      for (const { value, machine_id } of rows) {
        const short = value.length === 16 ? normalizeSerial(value) : value;
        if (short === value || taken.has(short)) continue;
        await db.updateTable('identifiers').set({ value: short }).where('kind', '=', 'serial').where('value', '=', value).execute();
        await db
          .updateTable('machines')
          .set({ service_tag: short })
          .where('id', '=', machine_id)
          .where('service_tag', '=', value)
          .execute();
        taken.add(short);
      }
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/**
 * Identity: certificates muster's CA issued (docs/identity.md), and fleet slots, pre-allocated devices each with a
 * one-time password (stored hashed), a hostname from the fleet's sequence and a tunnel port unique across fleets,
 * bound to one hardware id when claimed. A released slot's tunnel port is null, so the port can be taken again.
 */
function identity(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('certificates')
        .addColumn('serial', 'text', (c) => c.primaryKey())
        .addColumn('machine_id', 'text')
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('not_before', 'text', (c) => c.notNull())
        .addColumn('not_after', 'text', (c) => c.notNull())
        .addColumn('pem', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('revoke_reason', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('certificates_machine').on('certificates').column('machine_id').execute();
      await db.schema
        .createTable('fleet_slots')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('fleet_id', 'text', (c) => c.notNull().references('fleets.id'))
        .addColumn('fleet_seq', 'integer', (c) => c.notNull())
        .addColumn('hostname', 'text', (c) => c.notNull())
        .addColumn('otp_hash', 'text', (c) => c.notNull())
        .addColumn('tunnel_port', 'integer', (c) => c.unique())
        .addColumn('hwid', 'text', (c) => c.unique())
        .addColumn('machine_id', 'text')
        .addColumn('ssh_public_key', 'text')
        .addColumn('claimed_at', 'text')
        .addColumn('claimed_from', 'text')
        .addColumn('answer', 'text')
        .addColumn('released_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('fleet_slots_otp', ['fleet_id', 'otp_hash'])
        .execute();
      await db.schema.createIndex('fleet_slots_machine').on('fleet_slots').column('machine_id').execute();
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/**
 * Enrollment tokens (docs/identity.md): a secret baked into an image, bound to a fleet and labels, limited in uses
 * and time, stored hashed; and the claims made with them, which wait for an operator when the token says so.
 */
function enrollmentTokens(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('enrollment_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('fleet_id', 'text', (c) => c.references('fleets.id'))
        .addColumn('labels', 'text', (c) => c.notNull())
        .addColumn('approval', 'text', (c) => c.notNull())
        .addColumn('max_uses', 'integer')
        .addColumn('uses', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('token_claims')
        .addColumn('machine_id', 'text', (c) => c.primaryKey())
        .addColumn('token_id', 'text', (c) => c.notNull())
        .addColumn('hwid', 'text', (c) => c.notNull().unique())
        .addColumn('csr', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('answer', 'text')
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('decided_at', 'text')
        .addColumn('decided_by', 'text')
        .execute();
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/** IP pools (docs/identity.md): one IPv4 range per fleet, and the address each claimed machine took from it. */
function ipPools(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('fleet_ip_pools')
        .addColumn('fleet_id', 'text', (c) => c.primaryKey().references('fleets.id'))
        .addColumn('cidr', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('ip_allocations')
        .addColumn('fleet_id', 'text', (c) => c.notNull())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('machine_id', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('ip_allocations_pk', ['fleet_id', 'address'])
        .execute();
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/**
 * Profiles, rules for every door, and image-time identity (docs/profiles.md): versioned profiles, the version each
 * machine got, what rules match and set, the admin-defined endpoints hooks call, and each machine's sealed secret.
 */
function profiles(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('profiles')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('profile_versions')
        .addColumn('profile', 'text', (c) => c.notNull().references('profiles.name'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('comment', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('profile_versions_pk', ['profile', 'version'])
        .execute();
      await db.schema.alterTable('machines').addColumn('profile', 'text').execute();
      await db.schema.alterTable('machines').addColumn('profile_version', 'integer').execute();
      await db.schema.createIndex('machines_profile').on('machines').column('profile').execute();
      for (const [column, type, fallback] of [
        ['fleet', 'text', null],
        ['profile', 'text', null],
        ['approval', 'text', null],
        ['facts', 'text', '{}'],
        ['match_labels', 'text', '{}'],
      ] as const) {
        await db.schema
          .alterTable('rules')
          .addColumn(column, type, (c) => (fallback === null ? c : c.notNull().defaultTo(fallback)))
          .execute();
      }
      await db.schema.alterTable('enrollment_tokens').addColumn('profile', 'text').execute();
      await db.schema
        .createTable('endpoints')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('credential', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('machine_secrets')
        .addColumn('machine_id', 'text', (c) => c.primaryKey())
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

/**
 * Counters every replica on one PostgreSQL shares (docs/security.md): failures per key as rows of (key, time, count),
 * pruned once they expire, and one row per server-wide budget for its current window. SQLite counts in memory.
 */
function sharedLimits(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('limit_failures')
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('limit_failures_pk', ['scope', 'key', 'at'])
        .execute();
      await db.schema.createIndex('limit_failures_expires').on('limit_failures').column('expires_at').execute();
      await db.schema
        .createTable('limit_budgets')
        .addColumn('scope', 'text', (c) => c.primaryKey())
        .addColumn('window_start', 'bigint', (c) => c.notNull())
        .addColumn('window_end', 'bigint', (c) => c.notNull())
        .addColumn('reserved', 'integer', (c) => c.notNull())
        .addColumn('reported', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

function provider(dialect: Dialect): MigrationProvider {
  return {
    getMigrations: async () => ({
      '0001_initial': initial(dialect),
      '0002_search': search(dialect),
      '0003_boot': boot(),
      '0004_bounded_doors': boundedDoors(),
      '0005_credentials': credentials(),
      '0006_pi_serial_case': piSerialCase(),
      '0007_identity': identity(),
      '0008_enrollment_tokens': enrollmentTokens(),
      '0009_ip_pools': ipPools(),
      '0010_profiles': profiles(),
      '0011_claim_keys': claimKeys(dialect),
      '0012_shared_limits': sharedLimits(),
      '0013_pi_serial_prefix': piSerialPrefix(),
    }),
  };
}

/**
 * Claims keep the device's public key, so that a retry can prove it comes from the device (docs/identity.md), and
 * kept answers lose their configuration: agent commands rendered with the machine secret were stored in it.
 */
function claimKeys(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<any>) {
      for (const table of ['fleet_slots', 'token_claims']) {
        await db.schema.alterTable(table).addColumn('device_key', 'text').execute();
      }
      for (const table of ['fleet_slots', 'token_claims']) {
        const scrubbed =
          dialect === 'postgres' ? sql`(answer::jsonb - 'configuration')::text` : sql`json_remove(answer, '$.configuration')`;
        await sql`update ${sql.table(table)} set answer = ${scrubbed} where answer is not null`.execute(db);
      }
    },
    async down() {
      throw new Error('muster migrations are forward-only');
    },
  };
}

export interface MigrationReport {
  applied: string[];
  current: string | null;
}

/**
 * On PostgreSQL the migration tables live in the connection's current schema: Kysely otherwise finds
 * them in any schema, and a second muster schema in one database would take another's for its own.
 */
async function migrator(db: Kysely<any>, dialect: Dialect): Promise<Migrator> {
  if (dialect === 'sqlite') return new Migrator({ db, provider: provider(dialect) });
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  return new Migrator({ db, provider: provider(dialect), migrationTableSchema: rows[0].schema });
}

/** Applies every migration not applied yet (or, for tests of a migration, those up to `upTo`). */
export async function migrateToLatest(db: Kysely<any>, dialect: Dialect, upTo?: string): Promise<MigrationReport> {
  const latest = await migrator(db, dialect);
  const { error, results = [] } = upTo ? await latest.migrateTo(upTo) : await latest.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  const all = await latest.getMigrations();
  const executed = all.filter((m) => m.executedAt);
  return { applied: results.filter((r) => r.status === 'Success').map((r) => r.migrationName), current: executed.at(-1)?.name ?? null };
}

export async function pendingMigrations(db: Kysely<any>, dialect: Dialect): Promise<string[]> {
  return (await (await migrator(db, dialect)).getMigrations()).filter((m) => !m.executedAt).map((m) => m.name);
}

export { sql };
