import { type BootScript, MusterError } from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { checkTemplate } from '../../platform/templates/render.ts';
import { deleteScript, findScriptRow, saveScript } from '../core/store.ts';

export type BootScriptName = BootScript['name'];

/**
 * The built-in iPXE answers, used until an operator sets their own. Registration boots the artifacts
 * published as registration/kernel and registration/initrd when there are any (docs/ipxe.md).
 */
export const builtinScripts: Record<BootScriptName, string> = {
  registration: `#!ipxe
echo muster: registration
{% if artifacts['registration/kernel'] %}
kernel {{ artifacts['registration/kernel'] }} muster.url={{ server.url }} muster.machine={{ machine.id }} console=ttyS0 console=tty0
{% if artifacts['registration/initrd'] %}initrd {{ artifacts['registration/initrd'] }}
{% endif %}boot
{% else %}
echo muster: no registration image is published (artifacts registration/kernel and registration/initrd)
sleep 10
exit
{% endif %}
`,
  ready: `#!ipxe
echo muster: ready to install, but no ready script is set (muster boot script set ready FILE)
sleep 10
exit
`,
};

/** iPXE script templates by name; each falls back to its built-in one. */
export class BootScriptService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
  }

  async get(name: BootScriptName): Promise<BootScript> {
    const row = await findScriptRow(this.#tx.db, name);
    return row
      ? { name, body: row.body, builtin: false, updated_at: row.updated_at }
      : { name, body: builtinScripts[name], builtin: true, updated_at: null };
  }

  async list(): Promise<BootScript[]> {
    return Promise.all((Object.keys(builtinScripts) as BootScriptName[]).map((name) => this.get(name)));
  }

  async put(actor: string, name: BootScriptName, body: string): Promise<BootScript> {
    checkTemplate(name, body);
    const updated_at = now();
    await this.#tx.run(async (tx) => {
      await saveScript(tx.db, { name, body, updated_at });
      await tx.emit({ type: 'boot_script.set', actor, data: { script: name } });
    }, 1);
    return { name, body, builtin: false, updated_at };
  }

  /** Goes back to the built-in script. */
  async reset(actor: string, name: BootScriptName): Promise<BootScript> {
    await this.#tx.run(async (tx) => {
      if (!(await deleteScript(tx.db, name))) throw new MusterError('not_found', `Script ${name} is already the built-in one`);
      await tx.emit({ type: 'boot_script.reset', actor, data: { script: name } });
    }, 1);
    return this.get(name);
  }
}
