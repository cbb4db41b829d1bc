import type { IpxeParams } from '@muster/contract';
/**
 * What a PC's firmware and iPXE know about it: the values behind ${net0/mac}, ${uuid}, ${serial}, … (the
 * contract's IpxeParams, the settings muster's chain script asks for), and its address and name.
 */
export interface PxeIdentity extends IpxeParams {
  /** Colon-separated, lower case: 52:54:00:12:34:56. */
  mac: string;
  ip?: string;
  hostname?: string;
}

/** Built-in settings by iPXE name; `smbios/` and `netX/` spellings are folded onto these. */
function builtIn(identity: PxeIdentity): Map<string, string> {
  const values: [string, string | undefined][] = [
    ['net0/mac', identity.mac],
    ['mac', identity.mac],
    ['uuid', identity.uuid],
    ['serial', identity.serial],
    ['asset', identity.asset],
    ['manufacturer', identity.manufacturer],
    ['product', identity.product],
    ['buildarch', identity.buildarch ?? 'x86_64'],
    ['platform', identity.platform ?? 'pcbios'],
    ['net0/ip', identity.ip],
    ['ip', identity.ip],
    ['hostname', identity.hostname],
  ];
  return new Map(values.filter((entry): entry is [string, string] => entry[1] !== undefined));
}

function canonicalName(name: string): string {
  return name
    .toLowerCase()
    .replace(/^smbios\//, '')
    .replace(/^netx\//, 'net0/');
}

/** iPXE's settings: built-ins from the identity, overridden by `set`. */
export class IpxeSettings {
  readonly #values: Map<string, string>;

  constructor(identity: PxeIdentity) {
    this.#values = builtIn(identity);
  }

  get(name: string): string | undefined {
    return this.#values.get(canonicalName(name));
  }

  set(name: string, value: string): void {
    this.#values.set(canonicalName(name), value);
  }

  clear(name: string): void {
    this.#values.delete(canonicalName(name));
  }

  /** `${name}` and `${name:type}` replaced by their values; an unset setting expands to nothing, as in iPXE. */
  expand(text: string): string {
    return text.replace(/\$\{([^}:]+)(?::([a-z0-9]+))?\}/gi, (_, name: string, type: string | undefined) => {
      return formatSetting(this.get(name) ?? '', type?.toLowerCase());
    });
  }
}

function formatSetting(value: string, type: string | undefined): string {
  const hexBytes = /^[0-9a-f]{2}(:[0-9a-f]{2})*$/i.test(value) ? value.split(':') : null;
  switch (type) {
    case 'hexhyp':
      return hexBytes ? hexBytes.join('-') : value;
    case 'hexraw':
      return hexBytes ? hexBytes.join('') : value;
    case 'uristring':
      return encodeUriBytes(value, (c) => '/#:@?=&%'.includes(c));
    default:
      return value;
  }
}

/** Percent-encodes the bytes of `text` (UTF-8) for which `escaped(char)` holds, plus controls, space and DEL. */
function encodeUriBytes(text: string, escaped: (char: string) => boolean): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += byte <= 0x20 || byte >= 0x7f || escaped(char) ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : char;
  }
  return out;
}

function percentDecode(text: string): string {
  return Buffer.from(
    text.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
    'latin1',
  ).toString('utf8');
}

/**
 * The URL iPXE requests for a command's argument: resolved against the current script's URL, with the path and
 * query decoded and encoded again the way iPXE formats URIs (src/core/uri.c: `# : @ ? %`, spaces and controls
 * escaped), so ${net0/mac} goes out as 52%3A54%3A00%3A….
 */
export function ipxeUrl(target: string, base: string | null): URL {
  const url = base ? new URL(target, base) : new URL(target);
  const reencode = (field: string) => encodeUriBytes(percentDecode(field), (c) => '#:@?%'.includes(c));
  url.pathname = reencode(url.pathname);
  if (url.search.length > 1) url.search = `?${reencode(url.search.slice(1))}`;
  return url;
}
