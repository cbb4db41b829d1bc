import { type Identifier, type IdentifierKind, type IpxeParams, ipxeSettings, MusterError } from '@muster/contract';
import { allNames } from '../../modules/artifacts/store.ts';
import { normalizeAll, transitionInTx } from '../../modules/machines/service.ts';
import { loadMachines, updateMachineRow } from '../../modules/machines/store.ts';
import { findVersion } from '../../modules/profiles/store.ts';
import type { MachineRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { renderTemplate } from '../../platform/templates/render.ts';
import type { BootArrival, BootDiscovery } from '../core/resolve.ts';
import { type ArtifactUrlSigner, bootPhase } from '../core/signing.ts';
import type { BootScriptService } from './scripts.ts';

/** The answer to /ipxe: a script, its status, and the machine it was for. */
export interface IpxeAnswer {
  status: 200 | 403 | 404 | 503;
  script: string;
  machineId: string | null;
  /** Seconds to wait, when the server's budget for new machines is spent (503). */
  retryAfter?: number;
}

/** The first request: it makes iPXE say who it is. Text settings are URI-encoded, for spaces in product names. */
export function chainScript(baseUrl: string): string {
  // iPXE expands its own settings, written ${name}.
  const query = Object.entries(ipxeSettings)
    .map(([name, setting]) => `${name}=\${${setting}}`)
    .join('&');
  return `#!ipxe\necho muster: asking ${baseUrl} what to boot\nchain ${baseUrl}/ipxe?${query} || goto failed\nexit\n:failed\necho muster: no answer; booting the next device\nsleep 5\nexit\n`;
}

const script = (lines: string[]) => `#!ipxe\n${lines.join('\n')}\n`;

/** iPXE leaves a setting it does not have empty, or as the literal ${name} when it cannot expand it. */
function given(value: string | undefined): string | undefined {
  return value && !value.startsWith('${') ? value : undefined;
}

function identifiersOf(params: IpxeParams): Identifier[] {
  const raw: { kind: IdentifierKind; value: string; path: string }[] = [];
  for (const kind of ['mac', 'uuid', 'serial', 'asset'] as const) {
    const value = given(params[kind]);
    if (value) raw.push({ kind, value, path: `/${kind}` });
  }
  try {
    return normalizeAll(raw);
  } catch (error) {
    if (error instanceof MusterError) return normalizeAll(raw.filter((r) => r.path !== error.errors[0]?.path));
    throw error;
  }
}

/**
 * The per-machine iPXE answer, by state (DESIGN.md, front door 2): registration for unknown, discovered and
 * enrolled machines; a waiting loop while configured or building; the ready script when ready (the machine
 * then counts as provisioning); local disk (`exit`) once provisioned, failed or retired.
 */
export class IpxeService {
  readonly #tx: Transactor;
  readonly #discovery: BootDiscovery;
  readonly #scripts: BootScriptService;
  readonly #signer: ArtifactUrlSigner;

  constructor(tx: Transactor, discovery: BootDiscovery, scripts: BootScriptService, signer: ArtifactUrlSigner) {
    this.#tx = tx;
    this.#discovery = discovery;
    this.#scripts = scripts;
    this.#signer = signer;
  }

  async answer(params: IpxeParams, baseUrl: string, client: string, selfUrl: string): Promise<IpxeAnswer> {
    const identifiers = identifiersOf(params);
    if (identifiers.length === 0) {
      return {
        status: 404,
        script: script(['echo muster: iPXE gave no usable identifier (MAC, SMBIOS UUID or serial)', 'sleep 5', 'exit']),
        machineId: null,
      };
    }
    const mac = identifiers.find((i) => i.kind === 'mac')?.value;
    const serial = identifiers.find((i) => i.kind === 'serial')?.value;
    const facts = Object.fromEntries(
      (['manufacturer', 'product', 'buildarch', 'platform'] as const).flatMap((k) => (given(params[k]) ? [[k, params[k]]] : [])),
    );
    const arrival: BootArrival = { claim: { door: 'ipxe', serial, mac, facts: { ipxe: facts } }, identifiers, client };
    const found = await this.#discovery.identify(arrival, { discoverUnmatched: true });
    if (found.kind === 'refused')
      return { status: 403, script: script([`echo muster: rule ${found.rule.name} refuses this machine`, 'exit']), machineId: null };
    if (found.kind === 'throttled')
      return {
        status: 503,
        script: script(['echo muster: too many new machines at once; try again later', 'exit']),
        machineId: null,
        retryAfter: found.retryAfter,
      };
    if (found.kind === 'ignored' || found.kind === 'unmatched') return { status: 404, script: script(['exit']), machineId: null };
    const machine = await this.#seen(found.machine, facts);
    const render = async (name: 'registration' | 'ready') => {
      // A ready machine boots its profile's iPXE script (the version it got) when the profile has one.
      const profile =
        name === 'ready' && machine.profile !== null && machine.profile_version !== null
          ? await findVersion(this.#tx.db, machine.profile, machine.profile_version)
          : null;
      const body = profile?.spec.boot?.ipxe ?? (await this.#scripts.get(name)).body;
      const label = profile?.spec.boot?.ipxe ? `profile ${profile.name} v${profile.version} boot.ipxe` : name;
      return (await renderTemplate(label, body, await this.#context(machine, baseUrl))).toString();
    };
    switch (machine.state) {
      case 'discovered':
      case 'enrolled':
        return { status: 200, script: await render('registration'), machineId: machine.id };
      case 'configured':
      case 'building':
        return {
          status: 200,
          script: script(['echo muster: this machine is being prepared; asking again in 30 s', 'sleep 30', `chain ${selfUrl}`]),
          machineId: machine.id,
        };
      case 'ready':
      case 'provisioning': {
        const body = await render('ready');
        if (machine.state === 'ready') {
          await this.#tx.run((tx) => transitionInTx(tx, machine, 'provisioning', 'device', 'booted the ready script'));
        }
        return { status: 200, script: body, machineId: machine.id };
      }
      default:
        return {
          status: 200,
          script: script(['echo muster: nothing to install; booting from local disk', 'exit']),
          machineId: machine.id,
        };
    }
  }

  /** Notes the visit, and what iPXE told of the hardware where the machine has no inventory yet. */
  async #seen(machine: MachineRow, facts: Record<string, string | undefined>): Promise<MachineRow> {
    const time = new Date().toISOString();
    const changes: Partial<MachineRow> = { last_seen_at: time };
    // An anonymous request may fill in the inventory of a machine still registering, never change a later one.
    const registering = machine.state === 'discovered' || machine.state === 'enrolled';
    if (registering && machine.facts === '{}' && Object.keys(facts).length > 0) changes.facts = JSON.stringify({ ipxe: facts });
    await this.#tx.run((tx) => updateMachineRow(tx.db, machine.id, changes));
    return { ...machine, ...changes };
  }

  async #context(row: MachineRow, baseUrl: string): Promise<Record<string, unknown>> {
    const [machine] = await loadMachines(this.#tx.db, [row]);
    const names = await allNames(this.#tx.db);
    const phase = bootPhase(row.state);
    const artifacts = phase
      ? Object.fromEntries(names.map((n) => [n.name, `${baseUrl}${this.#signer.path(row.id, phase, n.sha256, n.name)}`]))
      : {};
    const ids = Object.fromEntries(machine.identifiers.map((i) => [i.kind, i.value]));
    return {
      machine: {
        id: machine.id,
        hostname: machine.hostname ?? '',
        state: machine.state,
        fleet: machine.fleet ?? '',
        labels: machine.labels,
        ...ids,
      },
      server: { url: baseUrl },
      artifacts,
    };
  }
}
