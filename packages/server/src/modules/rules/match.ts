import { matchesGlob } from 'node:path';
import type { Rule } from '@muster/contract';

/** What a front door knows of a machine that asks to boot. */
export interface BootClaim {
  door: 'pi' | 'ipxe';
  serial?: string;
  mac?: string;
}

/** Lower-case, colon-separated: dc-a6-32 and DCA632 both become dc:a6:32. */
export function normalizeMacPrefix(prefix: string): string {
  return (
    prefix
      .toLowerCase()
      .replace(/[^0-9a-f]/g, '')
      .match(/../g)
      ?.join(':') ?? ''
  );
}

export function ruleMatches(rule: Rule, claim: BootClaim): boolean {
  if (rule.door !== 'any' && rule.door !== claim.door) return false;
  if (rule.serial_pattern !== null && !(claim.serial && matchesGlob(claim.serial.toLowerCase(), rule.serial_pattern.toLowerCase())))
    return false;
  if (rule.mac_prefix !== null && !claim.mac?.startsWith(rule.mac_prefix)) return false;
  return true;
}

/** More conditions, then more literal characters in the serial pattern, make a rule more specific. */
function specificity(rule: Rule): [number, number] {
  const conditions = [rule.door !== 'any', rule.serial_pattern !== null, rule.mac_prefix !== null].filter(Boolean).length;
  const literal = (rule.serial_pattern ?? '').replace(/\[[^\]]*\]|[*?]/g, '').length + (rule.mac_prefix ?? '').length;
  return [conditions, literal];
}

/** The order rules are tried in (DESIGN.md): priority, then the more specific rule, then name. */
export function compareRules(a: Rule, b: Rule): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  const [ca, la] = specificity(a);
  const [cb, lb] = specificity(b);
  if (ca !== cb) return cb - ca;
  if (la !== lb) return lb - la;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The first rule, in order, that matches; null when none does. */
export function selectRule(rules: Rule[], claim: BootClaim): Rule | null {
  return [...rules].sort(compareRules).find((rule) => ruleMatches(rule, claim)) ?? null;
}
