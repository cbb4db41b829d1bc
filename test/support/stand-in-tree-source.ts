import { createHash } from 'node:crypto';
import type { PiProvisionResult, PiSerialFiles, PiTree } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import type { FileBody, PiTreeCatalog, PiTreeSource } from '../../packages/cli/src/dnsmasq/tree-source.ts';

export interface StandInFile {
  bytes: Uint8Array | ((serial: string) => Uint8Array);
}

/**
 * An in-memory PiTreeSource for tests of the materialiser and the watch: one tree, rules reduced to a set of
 * refused serials, a switch that makes it unreachable, and counts of what was asked.
 */
export class StandInTreeSource implements PiTreeSource, PiTreeCatalog {
  readonly tree: Map<string, StandInFile>;
  readonly refused = new Set<string>();
  readonly known = new Set<string>();
  unreachable = false;
  /** Bytes sent for a path instead of the listed ones (a server that changed its mind). */
  readonly tampered = new Map<string, Uint8Array>();
  readonly calls = { provision: 0, files: 0, file: new Map<string, number>(), artifact: 0 };

  constructor(tree: Record<string, StandInFile>) {
    this.tree = new Map(Object.entries(tree));
  }

  async provision(serial: string): Promise<PiProvisionResult> {
    this.calls.provision++;
    this.#check(serial);
    const created = !this.known.has(serial);
    this.known.add(serial);
    const machine = {
      serial,
      machine_id: `m_${serial}`,
      hostname: `pi-${serial}`,
      state: 'discovered' as const,
      tree: 'pi',
      created_at: new Date(0).toISOString(),
      last_seen_at: null,
    };
    return { machine, tree: 'pi', created };
  }

  async files(serial: string): Promise<PiSerialFiles> {
    this.calls.files++;
    this.#check(serial);
    const files = [...this.tree].map(([path, file]) => {
      const bytes = this.#bytes(serial, file);
      return { path, size: bytes.length, sha256: sha256(bytes), template: typeof file.bytes === 'function' };
    });
    return { serial, machine_id: `m_${serial}`, tree: 'pi', rule: null, files };
  }

  async file(serial: string, path: string): Promise<FileBody> {
    this.calls.file.set(path, (this.calls.file.get(path) ?? 0) + 1);
    this.#check(serial);
    const file = this.tree.get(path);
    if (!file) throw new MusterError('not_found', `no file ${path}`);
    const bytes = this.tampered.get(path) ?? this.#bytes(serial, file);
    // Two pieces, as a network body would come.
    return [bytes.subarray(0, bytes.length >> 1), bytes.subarray(bytes.length >> 1)];
  }

  async trees(): Promise<PiTree[]> {
    if (this.unreachable) throw new MusterError('unavailable', 'cannot reach the server at http://127.0.0.1:1: is `muster serve` running?');
    const files = [...this.tree].map(([path, file]) => {
      // A template is listed with its source's hash, as muster lists trees.
      const bytes = typeof file.bytes === 'function' ? Buffer.from(`template of ${path}`) : file.bytes;
      return { path, size: bytes.length, sha256: sha256(bytes), template: typeof file.bytes === 'function' };
    });
    const time = new Date(0).toISOString();
    return [{ name: 'pi', files, serial_pattern: null, machine_count: this.known.size, created_at: time, updated_at: time }];
  }

  async artifact(hash: string): Promise<FileBody> {
    this.calls.artifact++;
    for (const file of this.tree.values()) {
      if (typeof file.bytes !== 'function' && sha256(file.bytes) === hash) return [file.bytes];
    }
    throw new MusterError('not_found', `no artifact ${hash}`);
  }

  #check(serial: string): void {
    if (this.unreachable) throw new MusterError('unavailable', 'cannot reach the server at http://127.0.0.1:1: is `muster serve` running?');
    if (this.refused.has(serial)) throw new MusterError('boot_refused', `rule "lab-only" refuses serial ${serial}`);
  }

  #bytes(serial: string, file: StandInFile): Uint8Array {
    return typeof file.bytes === 'function' ? file.bytes(serial) : file.bytes;
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A Pi 4 boot tree in miniature: firmware shared by all, cmdline.txt rendered per serial. */
export function piTree(): Record<string, StandInFile> {
  return {
    'start4.elf': { bytes: Buffer.from('start4.elf firmware '.repeat(5000)) },
    'fixup4.dat': { bytes: Buffer.from('fixup4') },
    'config.txt': { bytes: Buffer.from('arm_64bit=1\nkernel=kernel8.img\n') },
    'overlays/vc4-kms-v3d.dtbo': { bytes: Buffer.from('overlay') },
    'cmdline.txt': {
      bytes: (serial) => Buffer.from(`console=tty1 root=/dev/nfs nfsroot=10.0.0.1:/srv/nfs/${serial} hostname=pi-${serial}\n`),
    },
  };
}
