import { createHash } from 'node:crypto';
import {
  type Machine,
  MusterError,
  normalizePiSerial,
  type PiProvisionResult,
  type PiSerialFiles,
  type PiTreeFile,
} from '@muster/contract';
import { findMachineRow, loadMachines, updateMachineRow } from '../../modules/machines/store.ts';
import { type PiService, piMachine } from '../../modules/pi/service.ts';
import { now } from '../../platform/crypto/ids.ts';
import type { MachineRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { renderTemplate } from '../../platform/templates/render.ts';
import type { BootDiscovery, Identification } from '../core/resolve.ts';

/** A file as a serial gets it: a blob on disk (the same for every machine) or bytes rendered for this one. */
export type PiFile = { entry: PiTreeFile; blob: string } | { entry: PiTreeFile; bytes: Buffer };

/** Where template contexts learn the server's own address. */
export interface BootSite {
  publicUrl: string;
}

/**
 * The Pi door: `<serial>/<path>` resolves to the tree of the machine, or for an unseen serial to the tree its
 * rule names, with `.liquid` files rendered per machine (docs/pi.md). Also what a serial would get, and
 * placing a serial by hand.
 */
export class PiBoot {
  readonly #tx: Transactor;
  readonly #trees: PiService;
  readonly #blobPath: (sha256: string) => string;
  readonly #discovery: BootDiscovery;
  readonly #site: BootSite;

  constructor(tx: Transactor, trees: PiService, blobPath: (sha256: string) => string, discovery: BootDiscovery, site: BootSite) {
    this.#tx = tx;
    this.#trees = trees;
    this.#blobPath = blobPath;
    this.#discovery = discovery;
    this.#site = site;
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
    if (!entry.template) return { entry, blob: this.#blobPath(entry.sha256) };
    const full = machine ? (await loadMachines(this.#tx.db, [machine]))[0] : null;
    const bytes = await renderTemplate(entry.path, await this.#trees.templateSource(entry.sha256), this.#context(serial, tree, full));
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
    const serial = normalizePiSerial(rawSerial);
    const plan = await this.#plan(serial);
    const files = await this.#trees.files(plan.tree);
    if (!files) throw new MusterError('not_found', `Pi tree ${plan.tree} no longer exists`);
    const entries = await Promise.all([...files.values()].map(async (f) => (await this.#file(serial, plan.tree, f, plan.machine)).entry));
    return { serial, machine_id: plan.machine?.id ?? null, tree: plan.tree, rule: plan.rule, files: entries };
  }

  /** One file as a serial gets it, creating nothing. */
  async serialFile(rawSerial: string, path: string): Promise<PiFile> {
    const serial = normalizePiSerial(rawSerial);
    const plan = await this.#plan(serial);
    const entry = (await this.#trees.files(plan.tree))?.get(path);
    if (!entry) throw new MusterError('not_found', `Pi tree ${plan.tree} has no file ${path}`);
    return this.#file(serial, plan.tree, entry, plan.machine);
  }

  /** Provisions a serial by hand: creates its machine if needed and sets its tree (given, or its rule's). */
  async provision(actor: string, rawSerial: string, tree?: string): Promise<PiProvisionResult> {
    const serial = normalizePiSerial(rawSerial);
    if (tree && !(await this.#trees.files(tree))) throw new MusterError('not_found', `No Pi tree named ${tree}`);
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
    return { machine: piMachine(machine, serial), tree: chosen, created: identification.created };
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
    const serial = normalizePiSerial(rawSerial);
    const identification = await this.#discovery.identify({
      claim: { door: 'pi', serial },
      identifiers: [{ kind: 'serial', value: serial }],
      client,
    });
    if (identification.kind !== 'machine') return { machineId: null, file: null, identification };
    const machine = identification.machine;
    const tree = machine.pi_tree ?? (await this.#discovery.ruleFor({ door: 'pi', serial }))?.pi_tree;
    const entry = tree ? (await this.#trees.files(tree))?.get(path) : undefined;
    if (!tree || !entry) return { machineId: machine.id, file: null, identification };
    return { machineId: machine.id, file: await this.#file(serial, tree, entry, machine), identification };
  }
}
