import { isAbsolute, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';

export interface Subnet {
  address: string;
  /** null when given without /N: dnsmasq then takes the netmask from the interface. */
  prefix: number | null;
}

export interface DnsmasqConfigOptions {
  subnet: Subnet;
  /** Where muster's HTTP (and, unless tftpLocal, TFTP) listens, as machines on the subnet reach it. */
  musterHost: string;
  httpPort: number;
  tftpPort: number;
  interface?: string;
  pi: boolean;
  /** dnsmasq serves TFTP itself from this directory (for `muster dnsmasq watch`). */
  tftpLocal?: string;
  logFile?: string;
  biosFile: string;
  uefiFile: string;
  arm64File: string;
  version: string;
}

/** Raspberry Pi Foundation and Raspberry Pi Trading OUIs (Pi 3 B8:27:EB to Pi 5 2C:CF:67 and 88:A2:9E). */
export const raspberryPiOuis = ['b8:27:eb', 'dc:a6:32', 'e4:5f:01', '28:cd:c1', 'd8:3a:dd', '2c:cf:67', '88:a2:9e'];

const ipv4Pattern = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIPv4(text: string): string {
  const m = ipv4Pattern.exec(text.trim());
  if (!m || m.slice(1).some((octet) => Number(octet) > 255 || (octet.length > 1 && octet.startsWith('0')))) {
    throw new InvalidArgumentError('expected an IPv4 address such as 192.168.1.10');
  }
  const address = m.slice(1).map(Number).join('.');
  if (address === '0.0.0.0' || address === '255.255.255.255') throw new InvalidArgumentError(`${address} is not the address of a host`);
  return address;
}

export function parseSubnet(text: string): Subnet {
  const [address, prefix, extra] = text.trim().split('/');
  if (extra !== undefined) throw new InvalidArgumentError('expected a subnet such as 192.168.1.0/24');
  let parsed: string;
  try {
    parsed = parseIPv4(address);
  } catch {
    throw new InvalidArgumentError('expected a subnet such as 192.168.1.0/24');
  }
  if (prefix === undefined) return { address: parsed, prefix: null };
  if (!/^\d{1,2}$/.test(prefix) || Number(prefix) < 1 || Number(prefix) > 32) {
    throw new InvalidArgumentError('expected a prefix length from 1 to 32, as in 192.168.1.0/24');
  }
  return { address: parsed, prefix: Number(prefix) };
}

export function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError('expected a port from 1 to 65535');
  }
  return port;
}

export function parseInterfaceName(text: string): string {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(text)) throw new InvalidArgumentError('expected a network interface name such as eth0');
  return text;
}

/** A path for a dnsmasq option: absolute, and free of what would end the option early (commas, newlines). */
export function parseConfigPath(text: string): string {
  if (text === '' || /[,\u0000-\u001f\u007f]/.test(text))
    throw new InvalidArgumentError('expected a path without commas or control characters');
  return isAbsolute(text) ? text : resolve(text);
}

/** A boot file name as a PXE ROM asks for it over TFTP. */
export function parseBootFile(text: string): string {
  if (!/^[A-Za-z0-9_.+-][A-Za-z0-9_.+/-]{0,127}$/.test(text)) throw new InvalidArgumentError('expected a file name such as ipxe.efi');
  return text;
}

function netmask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((shift) => (bits >>> shift) & 0xff).join('.');
}

function toNumber(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** Whether the address is inside the subnet; unknown (true) when the subnet has no prefix. */
export function inSubnet(address: string, subnet: Subnet): boolean {
  if (subnet.prefix === null) return true;
  const mask = toNumber(netmask(subnet.prefix));
  return (toNumber(address) & mask) >>> 0 === (toNumber(subnet.address) & mask) >>> 0;
}

/** Notes for the operator about the options given: things the config cannot make work. */
export function configWarnings(options: DnsmasqConfigOptions): string[] {
  const warnings: string[] = [];
  if (!options.tftpLocal && options.tftpPort !== 69) {
    warnings.push(
      `muster's TFTP listens on port ${options.tftpPort}, but PXE ROMs and Pi bootloaders always ask on port 69 and no DHCP option can tell them otherwise: run muster's TFTP on 69, or redirect 69 to ${options.tftpPort} on the muster host (e.g. nft add rule ip nat prerouting udp dport 69 redirect to :${options.tftpPort})`,
    );
  }
  if (options.pi && !inSubnet(options.musterHost, options.subnet)) {
    warnings.push(
      `--muster-host ${options.musterHost} is outside ${options.subnet.address}/${options.subnet.prefix}: Pi bootloaders do not route, they reach a TFTP server only on their own subnet`,
    );
  }
  return warnings;
}

/** The whole configuration file, each block commented for the operator who reads it. */
export function renderDnsmasqConfig(o: DnsmasqConfigOptions): string {
  const muster = o.musterHost;
  const tftpServer = o.tftpLocal ? '' : `,${muster}`;
  const subnetText = o.subnet.prefix === null ? o.subnet.address : `${o.subnet.address}/${o.subnet.prefix}`;
  const lines: string[] = [
    `# dnsmasq configuration for muster, printed by \`muster dnsmasq config\` (muster ${o.version}).`,
    '# Install it as /etc/dnsmasq.d/muster.conf, check it with `dnsmasq --test --conf-file=FILE`, restart dnsmasq.',
    '',
    '# No DNS: this dnsmasq only helps machines boot.',
    'port=0',
    '',
  ];
  if (o.interface) lines.push(`# Answer on ${o.interface} only.`, `interface=${o.interface}`, '');
  lines.push(
    `# Proxy-DHCP on ${subnetText}: the existing DHCP server keeps handing out addresses; dnsmasq adds only the`,
    '# boot options, and only for clients that ask to network boot. It hands out no lease.',
    `dhcp-range=${o.subnet.address},proxy${o.subnet.prefix === null ? '' : `,${netmask(o.subnet.prefix)}`}`,
    '',
    '# Keep the boot file name and server name in their own fields: some PXE ROMs look nowhere else.',
    'dhcp-no-override',
    '',
    '# Log every DHCP exchange in detail. TFTP transfers are logged as well (unless quiet-tftp is set).',
    'log-dhcp',
  );
  if (o.logFile) lines.push(`log-facility=${o.logFile}`);
  lines.push('');
  if (o.tftpLocal) {
    lines.push(
      `# TFTP is served by this dnsmasq from ${o.tftpLocal}. \`muster dnsmasq watch --tftp-root ${o.tftpLocal}\``,
      '# fills it with one directory per Pi serial; PXE clients need the iPXE binaries named below in it too',
      '# (from /usr/lib/ipxe or your iPXE build).',
      'enable-tftp',
      `tftp-root=${o.tftpLocal}`,
      '',
    );
  } else {
    lines.push(`# TFTP is muster's, at ${muster}: dnsmasq tells clients where it is and serves nothing itself.`);
    if (o.tftpPort !== 69) {
      lines.push(
        `# muster's TFTP listens on port ${o.tftpPort}, but PXE ROMs and Pi bootloaders only ever ask on port 69:`,
        `# redirect 69 to ${o.tftpPort} on ${muster} (e.g. nft add rule ip nat prerouting udp dport 69 redirect to :${o.tftpPort}).`,
      );
    }
    lines.push('');
  }
  lines.push(
    '# iPXE says who it is with user class "iPXE" (option 77) and its own option 175. The tag sends it on to',
    '# muster over HTTP instead of handing it iPXE again, which would loop.',
    'dhcp-userclass=set:ipxe,iPXE',
    'dhcp-match=set:ipxe,175',
    '',
  );
  if (o.pi) {
    lines.push(
      "# Raspberry Pis, by their makers' MAC prefixes (OUIs): they send PXE architecture 0 like a BIOS PC, and",
      '# must get the Pi answer below, not the PC boot menu.',
      ...raspberryPiOuis.map((oui) => `dhcp-mac=set:rpi,${oui}:*:*:*`),
      '',
    );
  }
  lines.push(
    `# PCs whose firmware speaks PXE load iPXE over TFTP${o.tftpLocal ? '' : ` from muster (${muster})`}: the firmware asks dnsmasq`,
    '# (port 4011) which file, and gets the one for its architecture.',
    `pxe-service=tag:!ipxe${o.pi ? ',tag:!rpi' : ''},x86PC,"muster: iPXE (BIOS)",${o.biosFile}${tftpServer}`,
    `pxe-service=tag:!ipxe,x86-64_EFI,"muster: iPXE (UEFI x86-64)",${o.uefiFile}${tftpServer}`,
    `pxe-service=tag:!ipxe,BC_EFI,"muster: iPXE (UEFI x86-64)",${o.uefiFile}${tftpServer}`,
    `pxe-service=tag:!ipxe,ARM64_EFI,"muster: iPXE (UEFI ARM64)",${o.arm64File}${tftpServer}`,
    '',
    "# Once in iPXE: fetch muster's boot script over HTTP. It chains to /ipxe with the machine's MAC, UUID and",
    "# serial, and muster answers by the machine's state (register, install, or boot from disk).",
    `dhcp-boot=tag:ipxe,http://${muster}:${o.httpPort}/boot.ipxe`,
    '',
  );
  if (o.pi) {
    lines.push(
      '# Raspberry Pi 3, 4 and 5: the bootloader takes an offer only if option 43 carries "Raspberry Pi Boot" (the',
      '# trailing spaces are for the Pi 3 boot ROM, which compares a fixed-length field). It then asks over TFTP',
      '# for <serial>/start4.elf (Pi 4) or <serial>/config.txt (Pi 5), <serial> being 8 hex digits.',
      'pxe-service=tag:rpi,x86PC,"Raspberry Pi Boot   "',
    );
    if (!o.tftpLocal) {
      lines.push(
        '# The Pi 4 and 5 take the TFTP server from next-server, set here by dhcp-boot (they ignore the file name).',
        `# The Pi 3 boot ROM asks the proxy itself: run this dnsmasq on ${muster} for Pi 3s. A Pi 4 or 5 can also`,
        `# be told in its EEPROM: TFTP_IP=${muster}.`,
        `dhcp-boot=tag:rpi,bootcode.bin,,${muster}`,
        '# dnsmasq 2.91 and later can add option 66 to proxy replies too; on those versions, uncomment:',
        `# dhcp-option-pxe=tag:rpi,option:tftp-server,"${muster}"`,
      );
    } else {
      lines.push('# The Pi asks this dnsmasq for its files: it answered the offer, and serves TFTP.');
    }
    lines.push('');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}
