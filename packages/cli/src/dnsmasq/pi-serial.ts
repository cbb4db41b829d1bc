import { normalizeSerial, piSerialSource } from '@muster/contract/identifiers.ts';
import { InvalidArgumentError } from 'commander';

/**
 * With TFTP_PREFIX=0 (the default) the Pi 3, 4 and 5 bootloaders prefix every name with the low 32 bits of
 * the serial as 8 lower-case hex digits (`%08x/`): `abcd1234/start4.elf` on a Pi 4, `abcd1234//config.txt`
 * on a Pi 5, whose full serial has 16 digits with a top half that varies but whose prefix is still 8. The
 * shape is the contract's one Pi serial rule, which the server's TFTP door uses too.
 */
export const defaultSerialPattern = new RegExp(`^${piSerialSource}$`);

/** `--serial-pattern`: a regular expression the whole first path segment must match. */
export function parseSerialPattern(source: string): RegExp {
  try {
    return new RegExp(`^(?:${source})$`);
  } catch (error) {
    throw new InvalidArgumentError(`not a regular expression: ${(error as Error).message}`);
  }
}

/** A TFTP root as dnsmasq writes it in front of a name: absolute, no trailing slash (except `/` itself). */
export function normalizeRoot(root: string): string {
  const trimmed = root.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/**
 * The serial a Pi asked under, from the path dnsmasq logged: the first segment under one of the roots,
 * when a file inside it was asked for and the segment looks like a serial. Doubled slashes count as one.
 */
export function serialFromTftpPath(path: string, roots: readonly string[], pattern: RegExp = defaultSerialPattern): string | null {
  for (const root of roots) {
    const base = normalizeRoot(root);
    const start = base === '/' ? '/' : `${base}/`;
    if (!path.startsWith(start)) continue;
    const segments = path
      .slice(start.length)
      .split('/')
      .filter((s) => s !== '');
    if (segments.length < 2) return null;
    const [first] = segments;
    if (first === '.' || first === '..' || !pattern.test(first)) return null;
    return normalizeSerial(first);
  }
  return null;
}
