import type { ProfileSpec } from '@muster/contract';
import { Liquid } from 'liquidjs';

// Where the machine secret can flow in a profile (docs/profiles.md), found from the templates alone: a variable
// whose template uses `secret`, a secret variable or `vars` as a whole is secret itself. Readable fields render
// from a context without the secret and without secret variables (render.ts), so this analysis is what lets
// `profile apply` refuse such a field with a reason; it is not what keeps the secret out of them.

// Parses only: the sandboxed engine of platform/templates renders, and has refused what does not parse by now.
const engine = new Liquid({ templates: {}, relativeReference: false, strictFilters: true, ownPropertyOnly: true });

/** A variable's path as liquidjs gives it: names, indexes, and nested paths where a key is itself a variable. */
type Segments = Array<string | number | Segments>;

/** The variables a template reads, each as its path; null when the template does not parse. */
function readsOf(source: string): Segments[] | null {
  try {
    const analysis = engine.analyzeSync(engine.parse(source), { partials: false });
    // Every use counts, also of a name a tag assigned first: a false alarm costs a rename, a miss would cost more.
    return Object.values(analysis.variables).flatMap((uses) => uses.map((use) => use.toArray()));
  } catch {
    return null;
  }
}

/**
 * Whether the template's markup reads a top-level variable by a computed name (`{{ [k] }}`, `{{ [n].pw }}`): the
 * analysis reports such a read as one of `k`, so it is found in the text, outside string literals and raw text.
 */
function looksUpByName(source: string): boolean {
  for (const [, output, tag] of source.matchAll(/\{\{-?([\s\S]*?)-?\}\}|\{%-?([\s\S]*?)-?%\}/g)) {
    const markup = (output ?? tag ?? '').replace(/'[^']*'|"[^"]*"/g, "''");
    if (/(^|[^\w\])])\s*\[/.test(markup)) return true;
  }
  return false;
}

/** Why a variable is secret, as the words that follow its name: `uses secret`, `uses vars.b, which uses secret`. */
export type SecretVariables = Map<string, string>;

/**
 * The first reason a template depends on the secret, given the secret variables it can see; null when it does
 * not, undefined when it does not parse.
 */
function dependence(source: string, secretVars: SecretVariables): string | null | undefined {
  const reads = readsOf(source);
  if (reads === null) return undefined;
  if (reads.some((path) => path[0] === 'secret')) return 'uses secret';
  // A name known only when rendering (`{% assign k = "secret" %}{{ [k] }}`) may be any of them, the secret too.
  if (looksUpByName(source)) return 'looks up a variable by a name known only when rendering, which may be secret';
  const first = secretVars.entries().next().value;
  for (const path of reads) {
    if (path[0] !== 'vars') continue;
    const key = path[1];
    if (typeof key === 'string' && secretVars.has(key)) return `uses vars.${key}, which ${secretVars.get(key)}`;
    // All of vars (`{{ vars | json }}`, `{% for v in vars %}`) or a key known only when rendering (`vars[name]`).
    if ((key === undefined || Array.isArray(key)) && first) return `uses vars, which holds vars.${first[0]}, which ${first[1]}`;
  }
  return null;
}

/**
 * The secret variables of a profile. Variables render in order and each sees only those before it, so a
 * variable is judged against the earlier ones.
 */
export function secretVariables(variables: Record<string, string> = {}): SecretVariables {
  const secret: SecretVariables = new Map();
  for (const [name, source] of Object.entries(variables)) {
    const why = dependence(source, secret);
    // One that does not parse renders nothing, but is kept from readable fields all the same.
    if (why !== null) secret.set(name, why ?? 'does not parse');
  }
  return secret;
}

/**
 * The templates whose output others read (JSON pointers into the spec): the host name, certificate names, hook
 * paths (in the endpoint's logs and in failure reasons), agent commands (kept with a claim's answer for retries)
 * and the iPXE script (served to whoever asks). Only files and hook bodies may use the secret.
 */
export function readableTemplates(spec: ProfileSpec): [string, string][] {
  const found: [string, string][] = [];
  if (spec.hostname) found.push(['/hostname', spec.hostname]);
  if (spec.boot?.ipxe) found.push(['/boot/ipxe', spec.boot.ipxe]);
  const c = spec.certificate;
  if (c?.common_name) found.push(['/certificate/common_name', c.common_name]);
  for (const [i, v] of (c?.dns_names ?? []).entries()) found.push([`/certificate/dns_names/${i}`, v]);
  for (const [i, v] of (c?.ip_addresses ?? []).entries()) found.push([`/certificate/ip_addresses/${i}`, v]);
  if (spec.account) found.push(['/account/create/path', spec.account.create.path]);
  if (spec.account?.update) found.push(['/account/update/path', spec.account.update.path]);
  for (const [i, check] of (spec.checks ?? []).entries()) found.push([`/checks/${i}/request/path`, check.request.path]);
  for (const [i, v] of (spec.agent?.commands ?? []).entries()) found.push([`/agent/commands/${i}`, v]);
  return found;
}

/** Each readable template that depends on the secret, with the chain that leads there. */
export function secretFlowErrors(spec: ProfileSpec): { path: string; message: string }[] {
  const secretVars = secretVariables(spec.variables);
  const errors: { path: string; message: string }[] = [];
  for (const [path, source] of readableTemplates(spec)) {
    // A template that does not parse is refused for that already.
    const why = dependence(source, secretVars);
    if (why) errors.push({ path, message: why });
  }
  return errors;
}
