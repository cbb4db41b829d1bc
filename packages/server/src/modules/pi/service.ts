import { readFile } from 'node:fs/promises';
import { MusterError, type PageResult, type PiMachine, type PiTree, type PiTreeFile, type PiTreePut } from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import { defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { MachineRow, PiTreeRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { checkTemplate } from '../../platform/templates/render.ts';
import { putRuleInTx } from '../rules/service.ts';
import {
  countArtifacts,
  countPis,
  deleteOwnRule,
  deleteTreeRow,
  findTreeRow,
  listPiRows,
  listTreeRows,
  machineCounts,
  otherRulesNaming,
  ownRules,
  saveTreeRow,
  treeInUse,
} from './store.ts';

/** What the Pi module needs of the artifact store. */
export interface ArtifactBlobs {
  blobPath(sha256: string): string;
  find(sha256: string): Promise<{ sha256: string; size: number } | null>;
}

const treeTtlMs = 2000;
const maxTemplateSources = 256;

/** A path inside a tree: relative, '/'-separated, no '.', '..' or empty segments, no control characters. */
function checkTreePath(path: string, index: number): void {
  const bad = path.split('/').some((s) => s === '' || s === '.' || s === '..') || /[\u0000-\u001f\u007f\\]/.test(path);
  if (bad) {
    throw new MusterError('validation_failed', `File path ${JSON.stringify(path)} is not a plain relative path`, {
      errors: [{ path: `/files/${index}/path`, message: 'not a plain relative path' }],
    });
  }
}

/** A machine as a Pi: by its serial, with its tree. */
export function piMachine(row: MachineRow, serial: string): PiMachine {
  return {
    serial,
    machine_id: row.id,
    hostname: row.hostname || null,
    state: row.state as PiMachine['state'],
    tree: row.pi_tree,
    created_at: row.created_at,
    last_seen_at: row.last_seen_at,
  };
}

/**
 * Raspberry Pi boot trees (docs/pi.md): their files, each an artifact, `.liquid` ones templates; the rule of a
 * tree's name sends unseen serials to it. What a booting Pi gets from a tree is boot/pi's.
 */
export class PiService {
  readonly #tx: Transactor;
  readonly #artifacts: ArtifactBlobs;
  readonly #trees = new Map<string, { row: PiTreeRow; files: Map<string, PiTreeFile>; at: number }>();
  readonly #sources = new Map<string, string>();

  constructor(tx: Transactor, artifacts: ArtifactBlobs) {
    this.#tx = tx;
    this.#artifacts = artifacts;
  }

  async #toTrees(rows: PiTreeRow[]): Promise<PiTree[]> {
    if (rows.length === 0) return [];
    const names = rows.map((r) => r.name);
    const [rules, counts] = await Promise.all([ownRules(this.#tx.db, names), machineCounts(this.#tx.db, names)]);
    return rows.map((row) => ({
      name: row.name,
      files: JSON.parse(row.files),
      serial_pattern: rules.find((r) => r.name === row.name)?.serial_pattern ?? null,
      machine_count: Number(counts.find((c) => c.pi_tree === row.name)?.count ?? 0),
      created_at: row.created_at,
      updated_at: row.updated_at,
    }));
  }

  async listTrees(): Promise<PiTree[]> {
    return this.#toTrees(await listTreeRows(this.#tx.db));
  }

  async getTree(name: string): Promise<PiTree> {
    const row = await findTreeRow(this.#tx.db, name);
    if (!row) throw new MusterError('not_found', `No Pi tree named ${name}`);
    return (await this.#toTrees([row]))[0];
  }

  /**
   * Creates or replaces a tree. Its files must already be artifacts; templates must parse. With a serial
   * pattern, the rule of the same name sends unseen serials that match it here; null removes that rule.
   */
  async putTree(actor: string, name: string, input: PiTreePut): Promise<PiTree> {
    const seen = new Set<string>();
    for (const [index, file] of input.files.entries()) {
      checkTreePath(file.path, index);
      if (seen.has(file.path)) {
        throw new MusterError('validation_failed', `File ${file.path} is listed twice`, {
          errors: [{ path: `/files/${index}/path`, message: 'duplicate' }],
        });
      }
      seen.add(file.path);
      const artifact = await this.#artifacts.find(file.sha256);
      if (!artifact || artifact.size !== file.size) {
        throw new MusterError('validation_failed', `File ${file.path}: no artifact ${file.sha256} of ${file.size} bytes; upload it first`, {
          errors: [{ path: `/files/${index}/sha256`, message: 'no such artifact' }],
        });
      }
      if (file.template) checkTemplate(file.path, await this.templateSource(file.sha256));
    }
    const files = [...input.files].sort((a, b) => (a.path < b.path ? -1 : 1));
    await this.#tx.run(async (tx) => {
      // Again inside the transaction: an artifact deleted since the check above must not end up in a tree.
      const shas = [...new Set(files.map((f) => f.sha256))];
      if ((await countArtifacts(tx.db, shas)) !== shas.length)
        throw new MusterError('conflict', 'An artifact of this tree was deleted meanwhile; upload it again');
      const time = now();
      const existing = await findTreeRow(tx.db, name);
      const row: PiTreeRow = { name, files: JSON.stringify(files), created_at: existing?.created_at ?? time, updated_at: time };
      await saveTreeRow(tx.db, row, existing !== undefined);
      await tx.emit({ type: existing ? 'pi_tree.updated' : 'pi_tree.created', actor, data: { tree: name, files: files.length } });
      if (input.serial_pattern) {
        await putRuleInTx(tx, actor, name, { door: 'pi', serial_pattern: input.serial_pattern, action: 'discover', pi_tree: name });
      } else if (input.serial_pattern === null) {
        await deleteOwnRule(tx.db, name);
      }
    }, 1);
    this.#trees.delete(name);
    return this.getTree(name);
  }

  async deleteTree(actor: string, name: string): Promise<void> {
    await this.#tx.run(async (tx) => {
      if (await treeInUse(tx.db, name))
        throw new MusterError('conflict', `Pi tree ${name} is used by machines; move them to another tree first`);
      const rules = await otherRulesNaming(tx.db, name);
      if (rules.length > 0) throw new MusterError('conflict', `Pi tree ${name} is named by rule ${rules[0].name}`);
      await deleteOwnRule(tx.db, name);
      if (!(await deleteTreeRow(tx.db, name))) throw new MusterError('not_found', `No Pi tree named ${name}`);
      await tx.emit({ type: 'pi_tree.deleted', actor, data: { tree: name } });
    }, 1);
    this.#trees.delete(name);
  }

  /** A tree's files by path, cached briefly: every request of a booting Pi reads it. */
  async files(name: string): Promise<Map<string, PiTreeFile> | null> {
    const cached = this.#trees.get(name);
    if (cached && Date.now() - cached.at < treeTtlMs) return cached.files;
    const row = await findTreeRow(this.#tx.db, name);
    if (!row) return null;
    const files = new Map((JSON.parse(row.files) as PiTreeFile[]).map((f) => [f.path, f]));
    this.#trees.set(name, { row, files, at: Date.now() });
    return files;
  }

  /** A template's source, cached by digest. */
  async templateSource(sha256: string): Promise<string> {
    let source = this.#sources.get(sha256);
    if (source === undefined) {
      source = await readFile(this.#artifacts.blobPath(sha256), 'utf8');
      if (this.#sources.size >= maxTemplateSources) this.#sources.delete(this.#sources.keys().next().value as string);
      this.#sources.set(sha256, source);
    }
    return source;
  }

  /** Machines that netboot as Pis (those with a tree), by serial. */
  async listPis(options: { cursor?: string; limit?: number; total?: boolean; tree?: string }): Promise<PageResult<PiMachine>> {
    const limit = options.limit ?? defaultPageSize;
    const page = finishPage(
      await listPiRows(this.#tx.db, { tree: options.tree, cursor: options.cursor, limit }),
      limit,
      (r) => [r.serial],
      (r) => piMachine(r, r.serial),
    );
    if (!options.total) return page;
    return { ...page, total: await countPis(this.#tx.db, options.tree) };
  }
}
