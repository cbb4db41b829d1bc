import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  type Machine,
  MusterError,
  normalizeSerial,
  type PageResult,
  type PiMachine,
  type PiProvisionResult,
  type PiSerialFiles,
  type PiTree,
  type PiTreeFile,
  type PiTreePut,
} from '@muster/contract';
import { checkTemplate, renderTemplate } from '../../boot/render.ts';
import { now } from '../../platform/crypto/ids.ts';
import { defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { MachineRow, PiTreeRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import type { BootDiscovery, Identification } from '../boot/discover.ts';
import { findMachineRow, loadMachines, updateMachineRow } from '../machines/store.ts';
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

/** A file as a serial gets it: a blob on disk (the same for every machine) or bytes rendered for this one. */
export type PiFile = { entry: PiTreeFile; blob: string } | { entry: PiTreeFile; bytes: Buffer };

/** Where template contexts learn the server's own address. */
export interface BootSite {
  publicUrl: string;
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

/**
 * Raspberry Pi boot trees served per serial: `<serial>/<path>` resolves to the tree of the machine, or for an
 * unseen serial to the tree its rule names, with `.liquid` files rendered per machine (docs/pi.md).
 */
export class PiService {
  readonly #tx: Transactor;
  readonly #artifacts: ArtifactBlobs;
  readonly #discovery: BootDiscovery;
  readonly #site: BootSite;
  readonly #trees = new Map<string, { row: PiTreeRow; files: Map<string, PiTreeFile>; at: number }>();
  readonly #sources = new Map<string, string>();

  constructor(tx: Transactor, artifacts: ArtifactBlobs, discovery: BootDiscovery, site: BootSite) {
    this.#tx = tx;
    this.#artifacts = artifacts;
    this.#discovery = discovery;
    this.#site = site;
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
      if (file.template) checkTemplate(file.path, await this.#templateSource(file.sha256));
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
  async #treeFiles(name: string): Promise<Map<string, PiTreeFile> | null> {
    const cached = this.#trees.get(name);
    if (cached && Date.now() - cached.at < treeTtlMs) return cached.files;
    const row = await findTreeRow(this.#tx.db, name);
    if (!row) return null;
    const files = new Map((JSON.parse(row.files) as PiTreeFile[]).map((f) => [f.path, f]));
    this.#trees.set(name, { row, files, at: Date.now() });
    return files;
  }

  async #templateSource(sha256: string): Promise<string> {
    let source = this.#sources.get(sha256);
    if (source === undefined) {
      source = await readFile(this.#artifacts.blobPath(sha256), 'utf8');
      if (this.#sources.size >= maxTemplateSources) this.#sources.delete(this.#sources.keys().next().value as string);
      this.#sources.set(sha256, source);
    }
    return source;
  }

  #context(serial: string, tree: string, machine: Machine | null): Record<string, unknown> {
    return {
      serial,
      tree,
      server: { url: this.#site.publicUrl },
      machine: machine
        ? {
            id: machine.id,
            hostname: machine.hostname ?? '',
            state: machine.state,
            serial,
            fleet: machine.fleet ?? '',
            labels: machine.labels,
          }
        : { id: '', hostname: '', state: 'discovered', serial, fleet: '', labels: {} },
    };
  }

  async #file(serial: string, tree: string, entry: PiTreeFile, machine: MachineRow | null): Promise<PiFile> {
    if (!entry.template) return { entry, blob: this.#artifacts.blobPath(entry.sha256) };
    const full = machine ? (await loadMachines(this.#tx.db, [machine]))[0] : null;
    const bytes = await renderTemplate(entry.path, await this.#templateSource(entry.sha256), this.#context(serial, tree, full));
    return { entry: { ...entry, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }, bytes };
  }

  /** The tree a serial gets without creating anything: its machine's, else its rule's. */
  async #plan(serial: string): Promise<{ machine: MachineRow | null; tree: string; rule: string | null }> {
    const claim = { door: 'pi', serial } as const;
    const identification = await this.#discovery.peek({ claim, identifiers: [{ kind: 'serial', value: serial }], client: '' });
    if (identification.kind === 'machine') {
      const tree = identification.machine.pi_tree ?? (await this.#discovery.ruleFor(claim))?.pi_tree;
      if (!tree) throw new MusterError('not_found', `Serial ${serial} is machine ${identification.machine.id}, which has no Pi tree`);
      return { machine: identification.machine, tree, rule: null };
    }
    if (identification.kind === 'pending' && identification.rule.pi_tree)
      return { machine: null, tree: identification.rule.pi_tree, rule: identification.rule.name };
    throw this.#noTree(serial, identification);
  }

  #noTree(serial: string, identification: Identification | { kind: 'pending' }): MusterError {
    if (identification.kind === 'refused')
      return new MusterError('boot_refused', `Rule ${identification.rule.name} refuses serial ${serial}`);
    if (identification.kind === 'ignored') return new MusterError('not_found', `Rule ${identification.rule.name} ignores serial ${serial}`);
    return new MusterError(
      'not_found',
      `No rule gives serial ${serial} a Pi tree; add one with muster pi tree add NAME DIR --serial-pattern GLOB`,
    );
  }

  /** What a serial will get ("show what a serial will get"), rendered for it, creating nothing. */
  async serialFiles(rawSerial: string): Promise<PiSerialFiles> {
    const serial = normalizeSerial(rawSerial);
    const plan = await this.#plan(serial);
    const files = await this.#treeFiles(plan.tree);
    if (!files) throw new MusterError('not_found', `Pi tree ${plan.tree} no longer exists`);
    const entries = await Promise.all([...files.values()].map(async (f) => (await this.#file(serial, plan.tree, f, plan.machine)).entry));
    return { serial, machine_id: plan.machine?.id ?? null, tree: plan.tree, rule: plan.rule, files: entries };
  }

  /** One file as a serial gets it, creating nothing. */
  async serialFile(rawSerial: string, path: string): Promise<PiFile> {
    const serial = normalizeSerial(rawSerial);
    const plan = await this.#plan(serial);
    const entry = (await this.#treeFiles(plan.tree))?.get(path);
    if (!entry) throw new MusterError('not_found', `Pi tree ${plan.tree} has no file ${path}`);
    return this.#file(serial, plan.tree, entry, plan.machine);
  }

  /** Provisions a serial by hand: creates its machine if needed and sets its tree (given, or its rule's). */
  async provision(actor: string, rawSerial: string, tree?: string): Promise<PiProvisionResult> {
    const serial = normalizeSerial(rawSerial);
    if (tree && !(await this.#treeFiles(tree))) throw new MusterError('not_found', `No Pi tree named ${tree}`);
    const arrival = { claim: { door: 'pi', serial } as const, identifiers: [{ kind: 'serial' as const, value: serial }], client: 'api' };
    const peeked = await this.#discovery.peek(arrival);
    let identification: Identification & { kind: 'machine' };
    if (peeked.kind === 'machine') identification = peeked;
    else if (tree || peeked.kind === 'pending') {
      // By hand, an operator may place a serial that no rule (or a refusing rule) would.
      const rule = peeked.kind === 'pending' ? peeked.rule : null;
      identification = await this.#discovery.create(arrival, {
        piTree: tree ?? rule?.pi_tree ?? null,
        labels: rule?.labels ?? {},
        actor,
        rule,
      });
    } else throw this.#noTree(serial, peeked);
    let machine = identification.machine;
    const chosen = tree ?? machine.pi_tree ?? (await this.#discovery.ruleFor(arrival.claim))?.pi_tree ?? null;
    if (!chosen) throw new MusterError('not_found', `No Pi tree for serial ${serial}; give --tree NAME`);
    if (machine.pi_tree !== chosen) {
      machine = await this.#tx.run(async (tx) => {
        const time = now();
        await updateMachineRow(tx.db, machine.id, { pi_tree: chosen, updated_at: time });
        await tx.emit({ type: 'machine.pi_tree_set', machineId: machine.id, actor, data: { pi_tree: chosen, previous: machine.pi_tree } });
        return (await findMachineRow(tx.db, machine.id)) as MachineRow;
      });
    }
    return { machine: this.#piMachine(machine, serial), tree: chosen, created: identification.created };
  }

  #piMachine(row: MachineRow, serial: string): PiMachine {
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

  /** Machines that netboot as Pis (those with a tree), by serial. */
  async listPis(options: { cursor?: string; limit?: number; total?: boolean; tree?: string }): Promise<PageResult<PiMachine>> {
    const limit = options.limit ?? defaultPageSize;
    const page = finishPage(
      await listPiRows(this.#tx.db, { tree: options.tree, cursor: options.cursor, limit }),
      limit,
      (r) => [r.serial],
      (r) => this.#piMachine(r, r.serial),
    );
    if (!options.total) return page;
    return { ...page, total: await countPis(this.#tx.db, options.tree) };
  }

  /**
   * The TFTP door: `<serial>/<path>` for a booting Pi. An unseen serial becomes a machine on this very
   * request when its rule discovers it. Returns the machine (for the timeline) and the file.
   */
  async bootFile(
    rawSerial: string,
    path: string,
    client: string,
  ): Promise<{ machineId: string | null; file: PiFile | null; identification: Identification }> {
    const serial = normalizeSerial(rawSerial);
    const identification = await this.#discovery.identify({
      claim: { door: 'pi', serial },
      identifiers: [{ kind: 'serial', value: serial }],
      client,
    });
    if (identification.kind !== 'machine') return { machineId: null, file: null, identification };
    const machine = identification.machine;
    const tree = machine.pi_tree ?? (await this.#discovery.ruleFor({ door: 'pi', serial }))?.pi_tree;
    const entry = tree ? (await this.#treeFiles(tree))?.get(path) : undefined;
    if (!tree || !entry) return { machineId: machine.id, file: null, identification };
    return { machineId: machine.id, file: await this.#file(serial, tree, entry, machine), identification };
  }
}
