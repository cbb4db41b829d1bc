import { matchesGlob } from 'node:path';
import type { Rule } from '@muster/contract';

/** What a front door knows of a machine it places: the door, identifiers, facts and labels it came with. */
export interface Arrival {
  door: 'pi' | 'ipxe' | 'enroll' | 'claim';
  serial?: string;
  mac?: string;
  /** Facts the door has: the enrollment's inventory, a claim's facts, iPXE's product and platform. */
  facts?: Record<string, unknown>;
  /** Labels the door gives: an enrollment token's. */
  labels?: Record<string, string>;
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

/** A fact by dotted path (cpu.architecture, disks.0.size); arrays take numeric segments. */
export function factAt(facts: Record<string, unknown> | undefined, path: string): unknown {
  let value: unknown = facts;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

const comparison = /^(>=|<=|>|<|=|!=)\s*(-?[0-9]+(\.[0-9]+)?)$/;

/** A fact condition: a comparison (>=8, <4, =2, !=0) on a number, else a glob (case ignored) on the text. */
export function factMatches(value: unknown, condition: string): boolean {
  if (value === undefined || value === null || typeof value === 'object') return false;
  const compared = comparison.exec(condition.trim());
  if (compared) {
    const n = typeof value === 'number' ? value : Number(String(value).trim());
    if (!Number.isFinite(n) || String(value).trim() === '') return false;
    const limit = Number(compared[2]);
    switch (compared[1]) {
      case '>=':
        return n >= limit;
      case '<=':
        return n <= limit;
      case '>':
        return n > limit;
      case '<':
        return n < limit;
      case '=':
        return n === limit;
      default:
        return n !== limit;
    }
  }
  return matchesGlob(String(value).toLowerCase(), condition.toLowerCase());
}

/** Why a rule does not match an arrival: one line per failed condition; empty when it matches. */
export function ruleMismatches(rule: Rule, arrival: Arrival): string[] {
  const reasons: string[] = [];
  if (rule.door !== 'any' && rule.door !== arrival.door) reasons.push(`door is ${arrival.door}, the rule wants ${rule.door}`);
  if (rule.serial_pattern !== null && !(arrival.serial && matchesGlob(arrival.serial.toLowerCase(), rule.serial_pattern.toLowerCase())))
    reasons.push(arrival.serial ? `serial ${arrival.serial} is not ${rule.serial_pattern}` : `no serial to match ${rule.serial_pattern}`);
  if (rule.mac_prefix !== null && !arrival.mac?.startsWith(rule.mac_prefix))
    reasons.push(arrival.mac ? `MAC ${arrival.mac} does not start with ${rule.mac_prefix}` : `no MAC to match ${rule.mac_prefix}`);
  for (const [path, condition] of Object.entries(rule.facts)) {
    const value = factAt(arrival.facts, path);
    if (!factMatches(value, condition))
      reasons.push(
        value === undefined ? `no fact ${path} to match ${condition}` : `fact ${path} is ${JSON.stringify(value)}, not ${condition}`,
      );
  }
  for (const [key, pattern] of Object.entries(rule.match_labels)) {
    const value = arrival.labels?.[key];
    if (value === undefined || !matchesGlob(value, pattern))
      reasons.push(value === undefined ? `no label ${key} to match ${pattern}` : `label ${key} is ${value}, not ${pattern}`);
  }
  return reasons;
}

export function ruleMatches(rule: Rule, arrival: Arrival): boolean {
  return ruleMismatches(rule, arrival).length === 0;
}

/** More conditions, then more literal characters in the serial pattern, make a rule more specific. */
function specificity(rule: Rule): [number, number] {
  const conditions =
    [rule.door !== 'any', rule.serial_pattern !== null, rule.mac_prefix !== null].filter(Boolean).length +
    Object.keys(rule.facts).length +
    Object.keys(rule.match_labels).length;
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
export function selectRule(rules: Rule[], arrival: Arrival): Rule | null {
  return [...rules].sort(compareRules).find((rule) => ruleMatches(rule, arrival)) ?? null;
}

/** Every rule in order with why it did or did not match; the first that matches is the one chosen. */
export function explainRules(rules: Rule[], arrival: Arrival): { rule: Rule; matched: boolean; chosen: boolean; reasons: string[] }[] {
  let chosen = false;
  return [...rules].sort(compareRules).map((rule) => {
    const reasons = ruleMismatches(rule, arrival);
    const matched = reasons.length === 0;
    const isChosen = matched && !chosen;
    if (isChosen) chosen = true;
    return { rule, matched, chosen: isChosen, reasons: matched && !isChosen ? ['a rule before it matched first'] : reasons };
  });
}
