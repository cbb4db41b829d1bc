import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { type HookRequest, MusterError, type ProfileSpec, type RenderedFile } from '@muster/contract';
import { deviceUsages, type IssuePolicy } from '../../platform/crypto/ca.ts';
import { renderTemplate } from '../../platform/templates/render.ts';
import { parseDuration } from '../../platform/time/duration.ts';
import { secretVariables } from './secret-flow.ts';

// What a profile gives one machine (docs/profiles.md), rendered in the template sandbox: the same code serves
// explain (which changes nothing and never shows the secret), claims, and `muster stage`.

/** What templates see of a machine. */
export interface MachineContext {
  machine_id: string | null;
  hostname: string | null;
  serial: string | null;
  mac: string | null;
  hwid: string | null;
  fleet: string | null;
  seq: number | null;
  labels: Record<string, string>;
  facts: Record<string, unknown>;
}

export interface RenderedProfile {
  hostname: string | null;
  /** The variables that do not use the secret. */
  vars: Record<string, string>;
  files: RenderedFile[];
  certificate: {
    common_name: string;
    dns_names: string[];
    ip_addresses: string[];
    validity_days: number | null;
    key_usages: string[];
    extended_key_usages: string[];
  };
  agent: { commands: string[]; services: string[] };
  boot: { pi_tree: string | null; ipxe: boolean };
}

/** Shown instead of the machine secret wherever the rendering is for reading (explain). */
export const redactedSecret = '(secret)';

const hostnamePattern = /^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$/;

async function text(name: string, source: string, context: Record<string, unknown>): Promise<string> {
  return (await renderTemplate(name, source, context)).toString('utf8');
}

/** The two contexts a profile renders from: `public` for everything readable, `full` for what may hold the secret. */
export interface ProfileContexts {
  public: Record<string, unknown>;
  full: Record<string, unknown>;
}

async function withVars(
  spec: ProfileSpec,
  base: Record<string, unknown>,
  include: (name: string) => boolean,
): Promise<Record<string, unknown>> {
  const vars: Record<string, string> = {};
  for (const [key, source] of Object.entries(spec.variables ?? {})) {
    if (include(key)) vars[key] = (await text(`variables.${key}`, source, { ...base, vars })).trim();
  }
  return { ...base, vars };
}

/**
 * What every readable field renders from (host name, certificate names, hook paths, agent commands, whatever
 * reaches an event or explain): the machine and the profile, and only the variables that do not use the secret,
 * rendered here without it. There is no `secret` in it at all, so a template cannot leak what it is not given.
 */
export async function publicContext(
  spec: ProfileSpec,
  profile: { name: string; version: number },
  machine: MachineContext,
): Promise<Record<string, unknown>> {
  const secretVars = secretVariables(spec.variables);
  return withVars(spec, { ...machine, machine, profile }, (name) => !secretVars.has(name));
}

/** What the machine's files and a hook's body render from: also the secret, and every variable, in order. */
export async function profileContext(
  spec: ProfileSpec,
  profile: { name: string; version: number },
  machine: MachineContext,
  secret: string,
): Promise<Record<string, unknown>> {
  return withVars(spec, { ...machine, machine, profile, secret }, () => true);
}

/** Both contexts of one machine. */
export async function profileContexts(
  spec: ProfileSpec,
  profile: { name: string; version: number },
  machine: MachineContext,
  secret: string,
): Promise<ProfileContexts> {
  return { public: await publicContext(spec, profile, machine), full: await profileContext(spec, profile, machine, secret) };
}

/** The host name a profile gives a machine, or null when it sets none; an invalid result is an error. */
export async function renderHostname(spec: ProfileSpec, context: Record<string, unknown>): Promise<string | null> {
  if (!spec.hostname) return null;
  const name = (await text('hostname', spec.hostname, context)).trim();
  if (!hostnamePattern.test(name) || name.length > 253)
    throw new MusterError(
      'validation_failed',
      `The profile's hostname template gives ${JSON.stringify(name.slice(0, 80))}, not a host name`,
      {
        errors: [{ path: '/spec/hostname', message: 'renders to an invalid host name' }],
      },
    );
  return name;
}

/**
 * Everything the profile gives the machine: its files from the full context, all else from the public one.
 * `hostname` in the contexts must already be the final host name.
 */
export async function renderProfile(spec: ProfileSpec, contexts: ProfileContexts): Promise<RenderedProfile> {
  const policy = spec.certificate ?? {};
  const context = contexts.public;
  const hostname = (context.hostname as string | null) ?? (context.machine_id as string | null) ?? 'machine';
  // The templates do not depend on each other: they render at once, each on whichever render thread is free.
  const trimmed = (name: string, source: string, over: Record<string, unknown> = context) =>
    text(name, source, over).then((out) => out.trim());
  const [contents, commonName, dnsRendered, ipRendered, commands] = await Promise.all([
    Promise.all((spec.files ?? []).map((file, index) => renderTemplate(`files[${index}] (${file.path})`, file.template, contexts.full))),
    policy.common_name ? trimmed('certificate.common_name', policy.common_name) : Promise.resolve(hostname),
    Promise.all(
      (policy.dns_names ?? ['{{ hostname }}']).map((source, i) => trimmed(`certificate.dns_names[${i}]`, source, { ...context, hostname })),
    ),
    Promise.all((policy.ip_addresses ?? []).map((source, i) => trimmed(`certificate.ip_addresses[${i}]`, source))),
    Promise.all((spec.agent?.commands ?? []).map((source, i) => text(`agent.commands[${i}]`, source, context))),
  ]);
  const files: RenderedFile[] = [];
  let total = 0;
  for (const [index, file] of (spec.files ?? []).entries()) {
    const content = contents[index];
    total += content.length;
    if (total > 4 * 1024 * 1024) throw new MusterError('payload_too_large', "The profile's files render more than 4 MiB in all");
    files.push({
      path: file.path.replace(/^\/+/, ''),
      mode: (file.mode ?? '0644').padStart(4, '0'),
      owner: file.owner ?? 'root:root',
      content: content.toString('utf8'),
      sha256: createHash('sha256').update(content).digest('hex'),
    });
  }
  const dnsNames = [];
  for (const [i, name] of dnsRendered.entries()) {
    if (name === '') continue;
    if (!hostnamePattern.test(name.replace(/^\*\./, '')))
      throw new MusterError(
        'validation_failed',
        `certificate.dns_names[${i}] renders ${JSON.stringify(name.slice(0, 80))}, not a DNS name`,
      );
    dnsNames.push(name);
  }
  const ipAddresses = [];
  for (const [i, address] of ipRendered.entries()) {
    if (address === '') continue;
    if (!isIP(address))
      throw new MusterError(
        'validation_failed',
        `certificate.ip_addresses[${i}] renders ${JSON.stringify(address.slice(0, 80))}, not an IP address`,
      );
    ipAddresses.push(address);
  }
  if (commonName === '' || commonName.length > 64)
    throw new MusterError('validation_failed', 'certificate.common_name must render to 1 to 64 characters');
  return {
    hostname: (context.hostname as string | null) ?? null,
    vars: context.vars as Record<string, string>,
    files,
    certificate: {
      common_name: commonName,
      dns_names: [...new Set(dnsNames)],
      ip_addresses: [...new Set(ipAddresses)],
      validity_days: policy.validity ? Math.max(1 / 24, parseDuration(policy.validity) / 86_400) : null,
      key_usages: policy.key_usages ?? [...deviceUsages.keyUsages],
      extended_key_usages: policy.extended_key_usages ?? [...deviceUsages.extendedKeyUsages],
    },
    agent: { commands, services: spec.agent?.services ?? [] },
    boot: { pi_tree: spec.boot?.pi_tree ?? null, ipxe: spec.boot?.ipxe !== undefined },
  };
}

/** A hook's request: its path (in the endpoint's logs and in failure reasons) public, its body from the full context. */
export async function renderRequest(
  label: string,
  request: HookRequest,
  contexts: ProfileContexts,
): Promise<{ method: string; path: string; body: Record<string, string> | null; expect: number[] }> {
  const path = (await text(`${label}.path`, request.path, contexts.public)).trim();
  let body: Record<string, string> | null = null;
  if (request.body) {
    body = {};
    for (const [key, source] of Object.entries(request.body)) body[key] = await text(`${label}.body.${key}`, source, contexts.full);
  }
  return { method: request.method, path, body, expect: request.expect ?? [200, 201, 204] };
}

/** The CA's policy for a rendered profile: names, validity and usages. */
export function issuePolicy(rendered: RenderedProfile): IssuePolicy {
  const c = rendered.certificate;
  return {
    commonName: c.common_name,
    dnsNames: c.dns_names,
    ipAddresses: c.ip_addresses,
    ...(c.validity_days === null ? {} : { days: c.validity_days }),
    keyUsages: c.key_usages as IssuePolicy['keyUsages'],
    extendedKeyUsages: c.extended_key_usages as IssuePolicy['extendedKeyUsages'],
  };
}
