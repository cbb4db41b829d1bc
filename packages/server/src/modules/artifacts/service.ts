import {
  type Artifact,
  type ArtifactNameEntry,
  artifactNameProblem,
  MusterError,
  maxArtifactNameBytes,
  type PageResult,
} from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import { decodeCursor, defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { ArtifactRow } from '../../platform/db/schema.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import { BlobStore, type Received } from './blobs.ts';
import { BlobLock } from './lock.ts';
import {
  artifactRowsPage,
  countRows,
  deleteArtifact,
  deleteName,
  findArtifactRow,
  findNameRow,
  insertArtifact,
  nameRowsPage,
  namesOf,
  piTreesUsing,
  saveName,
} from './store.ts';

/** An artifact with the path of its file on this server (never sent to clients). */
export type StoredArtifact = Artifact & { path: string };

export interface AddOptions {
  /** The file name it was uploaded as (metadata only). */
  name?: string;
  /** Refuse the upload, keeping nothing, unless its sha256 is this. */
  expectedSha256?: string;
  /** Also publish it under this name, in the same transaction as its row. */
  publish?: string;
}

export interface ArtifactSettings {
  dir: string;
  maxBytes: number;
}

const sha256Pattern = /^[0-9a-f]{64}$/;

/** Lower-case hex is the one spelling; anything else is refused before any work. */
export function checkSha256(value: string, what = 'sha256'): string {
  const sha256 = value.trim().toLowerCase();
  if (!sha256Pattern.test(sha256)) {
    throw new MusterError('validation_failed', `${what} "${value}" is not a sha256: 64 hex digits`, {
      errors: [{ path: `/${what}`, message: 'must be 64 hex digits' }],
    });
  }
  return sha256;
}

function checkName(name: string, path = '/name'): string {
  const problem = artifactNameProblem(name);
  if (problem) throw new MusterError('validation_failed', problem, { errors: [{ path, message: 'not a valid artifact name' }] });
  return name;
}

function checkFileName(name: string): string {
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name) || Buffer.byteLength(name) > maxArtifactNameBytes) {
    throw new MusterError(
      'validation_failed',
      `File name "${name}" has control characters or is longer than ${maxArtifactNameBytes} bytes`,
      {
        errors: [{ path: '/name', message: 'not a valid file name' }],
      },
    );
  }
  return name;
}

function isForeignKeyViolation(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return e?.code === '23503' || /FOREIGN KEY constraint failed/.test(e?.message ?? '');
}

/**
 * Content-addressed artifacts (docs/artifacts.md): files stored once by sha256, and the published names
 * (what TFTP serves and boot templates reference) that point at them.
 */
export class ArtifactService {
  readonly #tx: Transactor;
  readonly #blobs: BlobStore;
  readonly #lock: BlobLock;
  readonly maxBytes: number;

  constructor(tx: Transactor, settings: ArtifactSettings) {
    this.#tx = tx;
    this.#blobs = new BlobStore(settings.dir);
    this.#lock = new BlobLock(tx.db, tx.dialect);
    this.maxBytes = settings.maxBytes;
  }

  get dir(): string {
    return this.#blobs.dir;
  }

  blobPath(sha256: string): string {
    return this.#blobs.path(checkSha256(sha256));
  }

  async #toArtifacts(rows: ArtifactRow[]): Promise<StoredArtifact[]> {
    const names = await namesOf(
      this.#tx.db,
      rows.map((r) => r.sha256),
    );
    return rows.map((r) => ({
      sha256: r.sha256,
      size: Number(r.size),
      name: r.name,
      names: names.get(r.sha256) ?? [],
      created_by: r.created_by,
      created_at: r.created_at,
      path: this.#blobs.path(r.sha256),
    }));
  }

  async find(sha256: string): Promise<StoredArtifact | null> {
    const row = await findArtifactRow(this.#tx.db, checkSha256(sha256));
    return row ? (await this.#toArtifacts([row]))[0] : null;
  }

  async get(sha256: string): Promise<StoredArtifact> {
    const artifact = await this.find(sha256);
    if (!artifact) throw new MusterError('not_found', `No artifact ${sha256}; upload it with \`muster artifact add FILE\``);
    return artifact;
  }

  /** The artifact a published name points at, or null when nothing is published under it. */
  async byName(name: string): Promise<StoredArtifact | null> {
    const entry = await findNameRow(this.#tx.db, name);
    return entry ? this.find(entry.sha256) : null;
  }

  async list(cursor?: string, limit = defaultPageSize, total = false): Promise<PageResult<StoredArtifact>> {
    const after = cursor ? (decodeCursor(cursor, 2).map(String) as [string, string]) : null;
    const rows = await artifactRowsPage(this.#tx.db, after, limit);
    const page = finishPage(
      rows,
      limit,
      (r) => [r.created_at, r.sha256],
      (r) => r,
    );
    const items = await this.#toArtifacts(page.items);
    return total ? { ...page, items, total: await countRows(this.#tx.db, 'artifacts') } : { ...page, items };
  }

  async listNames(cursor?: string, limit = defaultPageSize, total = false): Promise<PageResult<ArtifactNameEntry>> {
    const after = cursor ? String(decodeCursor(cursor, 1)[0]) : null;
    const page = finishPage(
      await nameRowsPage(this.#tx.db, after, limit),
      limit,
      (r) => [r.name],
      (r) => ({ name: r.name, sha256: r.sha256, size: Number(r.size), updated_at: r.updated_at }),
    );
    return total ? { ...page, total: await countRows(this.#tx.db, 'artifact_names') } : page;
  }

  /**
   * Stores the bytes of `source`: hashed while they stream to disk, fsynced, renamed into place, then
   * recorded. Only then does it resolve, so an acknowledged upload survives a crash, and a row never points
   * at a missing file. The same content twice (also at once) gives one file and one row.
   */
  async addStream(
    actor: string,
    source: AsyncIterable<Uint8Array>,
    options: AddOptions = {},
  ): Promise<{ artifact: StoredArtifact; created: boolean }> {
    const expected = options.expectedSha256 === undefined ? undefined : checkSha256(options.expectedSha256);
    const name = checkFileName(options.name ?? '');
    const publish = options.publish === undefined ? undefined : checkName(options.publish, '/publish');
    const received = await this.#blobs.receive(source, this.maxBytes);
    if (expected && received.sha256 !== expected) {
      await this.#blobs.discard(received);
      throw new MusterError('bad_request', `The content's sha256 is ${received.sha256}, not the expected ${expected}; nothing was kept`, {
        errors: [{ path: '/sha256', message: 'does not match the content' }],
      });
    }
    const created = await this.#lock.run(received.sha256, async () => {
      await this.#blobs.settle(received);
      return this.#tx.run((tx) => this.#record(tx, actor, received, name, publish));
    });
    return { artifact: await this.get(received.sha256), created };
  }

  async #record(tx: Tx, actor: string, received: Received, name: string, publish: string | undefined): Promise<boolean> {
    const { sha256, size } = received;
    const created = await insertArtifact(tx.db, { sha256, size, name, created_by: actor, created_at: now() });
    if (created) await tx.emit({ type: 'artifact.added', actor, data: { sha256, size, name } });
    if (publish !== undefined) await this.#point(tx, actor, publish, sha256);
    return created;
  }

  /** Points `name` at the artifact; returns whether the name is new. Pointing it where it points is no change. */
  async #point(tx: Tx, actor: string, name: string, sha256: string): Promise<boolean> {
    const previous = await findNameRow(tx.db, name);
    if (previous?.sha256 === sha256) return false;
    const updated_at = now();
    await saveName(tx.db, { name, sha256, updated_at }, previous !== undefined);
    await tx.emit({ type: 'artifact.published', actor, data: { name, sha256, previous: previous?.sha256 ?? null } });
    return !previous;
  }

  /** Publishes `name` (e.g. ipxe.efi) as the artifact `sha256`; re-pointing a name is how it is updated. */
  async publish(actor: string, name: string, sha256: string): Promise<{ entry: ArtifactNameEntry; created: boolean }> {
    checkName(name);
    const digest = checkSha256(sha256);
    const created = await this.#tx.run(async (tx) => {
      if (!(await findArtifactRow(tx.db, digest))) {
        throw new MusterError('not_found', `No artifact ${digest} to publish as ${name}; upload it first`);
      }
      return this.#point(tx, actor, name, digest);
    });
    return { entry: await this.#nameEntry(name), created };
  }

  async #nameEntry(name: string): Promise<ArtifactNameEntry> {
    const row = await findNameRow(this.#tx.db, name);
    const artifact = row ? await findArtifactRow(this.#tx.db, row.sha256) : undefined;
    if (!row || !artifact) throw new MusterError('not_found', `Nothing is published as ${name}`);
    return { name: row.name, sha256: row.sha256, size: Number(artifact.size), updated_at: row.updated_at };
  }

  async getName(name: string): Promise<ArtifactNameEntry> {
    return this.#nameEntry(checkName(name));
  }

  /** Removes a published name; the artifact itself stays. */
  async unpublish(actor: string, name: string): Promise<void> {
    checkName(name);
    await this.#tx.run(async (tx) => {
      const row = await findNameRow(tx.db, name);
      if (!row) throw new MusterError('not_found', `Nothing is published as ${name}`);
      await deleteName(tx.db, name);
      await tx.emit({ type: 'artifact.unpublished', actor, data: { name, sha256: row.sha256 } });
    });
  }

  /** Deletes an artifact and its file; refused while a published name or a Pi tree uses it. */
  async delete(actor: string, sha256: string): Promise<void> {
    const digest = checkSha256(sha256);
    await this.#lock.run(digest, async () => {
      try {
        await this.#tx.run(async (tx) => {
          const row = await findArtifactRow(tx.db, digest);
          if (!row) throw new MusterError('not_found', `No artifact ${digest}`);
          const names = (await namesOf(tx.db, [digest])).get(digest) ?? [];
          const trees = await piTreesUsing(tx.db, digest);
          if (names.length > 0 || trees.length > 0) throw inUse(digest, names, trees);
          await deleteArtifact(tx.db, digest);
          await tx.emit({ type: 'artifact.deleted', actor, data: { sha256: digest, size: Number(row.size), name: row.name } });
        }, 1);
      } catch (error) {
        if (isForeignKeyViolation(error)) {
          throw new MusterError('conflict', `Artifact ${digest} was published while it was being deleted; unpublish it first`);
        }
        throw error;
      }
      await this.#blobs.remove(digest);
    });
  }

  /** Removes uploads that a crash interrupted; returns how many. */
  sweepIncoming(): Promise<number> {
    return this.#blobs.sweepIncoming();
  }
}

function inUse(sha256: string, names: string[], trees: string[]): MusterError {
  const uses = [
    ...(names.length > 0 ? [`published as ${names.join(', ')}`] : []),
    ...(trees.length > 0 ? [`in Pi tree ${trees.join(', ')}`] : []),
  ];
  return new MusterError('conflict', `Artifact ${sha256} is still ${uses.join(' and ')}; unpublish it or change the trees first`, {
    extra: { names, pi_trees: trees },
  });
}
