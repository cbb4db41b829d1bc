/**
 * Every system tool a test suite uses, and the Debian package that brings it: the one list that the test
 * command's set-up installs from and that the tests name when a tool is missing.
 */
export interface TestTool {
  /** What the tests call it. */
  name: string;
  /** Where the tests expect it. */
  path: string;
  /** A program to run, or a file to read (firmware, ROMs). */
  kind: 'program' | 'file';
  /** The Debian package that installs it. */
  package: string;
  usedBy: string;
}

export const testTools: readonly TestTool[] = [
  { name: 'tftp', path: '/usr/bin/tftp', kind: 'program', package: 'tftp-hpa', usedBy: 'TFTP client tests' },
  { name: 'atftp', path: '/usr/bin/atftp', kind: 'program', package: 'atftp', usedBy: 'TFTP client tests (windowsize)' },
  { name: 'curl', path: '/usr/bin/curl', kind: 'program', package: 'curl', usedBy: 'TFTP and Pi boot tests' },
  { name: 'openssl', path: '/usr/bin/openssl', kind: 'program', package: 'openssl', usedBy: 'CA tests (verify, crl)' },
  { name: 'jq', path: '/usr/bin/jq', kind: 'program', package: 'jq', usedBy: 'README tour test' },
  // The server only: the package's daemon is never started (see setup.ts).
  { name: 'in.tftpd', path: '/usr/sbin/in.tftpd', kind: 'program', package: 'tftpd-hpa', usedBy: 'simulator tests against tftpd-hpa' },
  // dnsmasq-base has the program without the service that the dnsmasq package starts.
  { name: 'dnsmasq', path: '/usr/sbin/dnsmasq', kind: 'program', package: 'dnsmasq-base', usedBy: 'dnsmasq config and watch tests' },
  { name: 'ss', path: '/usr/bin/ss', kind: 'program', package: 'iproute2', usedBy: 'dnsmasq watch test (is port 67 free?)' },
  {
    name: 'qemu-system-x86_64',
    path: '/usr/bin/qemu-system-x86_64',
    kind: 'program',
    package: 'qemu-system-x86',
    usedBy: 'QEMU iPXE boot test',
  },
  {
    name: 'iPXE ROM for QEMU',
    path: '/usr/lib/ipxe/qemu/efi-e1000.rom',
    kind: 'file',
    package: 'ipxe-qemu',
    usedBy: 'QEMU iPXE boot test',
  },
  { name: 'systemd-analyze', path: '/usr/bin/systemd-analyze', kind: 'program', package: 'systemd', usedBy: 'systemd unit check' },
  { name: 'script', path: '/usr/bin/script', kind: 'program', package: 'bsdutils', usedBy: 'CLI tests on a terminal (progress)' },
  { name: 'promtool', path: '/usr/bin/promtool', kind: 'program', package: 'prometheus', usedBy: 'metrics format check' },
  { name: 'undionly.kpxe', path: '/usr/lib/ipxe/undionly.kpxe', kind: 'file', package: 'ipxe', usedBy: 'iPXE binaries over TFTP' },
];

export function testTool(name: string): TestTool {
  const tool = testTools.find((t) => t.name === name);
  if (!tool) throw new Error(`${name} is not in test/tools/list.ts`);
  return tool;
}

/** The line a test prints when a tool it needs cannot run. */
export function missingToolMessage(name: string, why = 'is missing'): string {
  const tool = testTool(name);
  return `${tool.name} (${tool.path}) ${why}: install it with 'apt-get install ${tool.package}', or run 'npm test' as root to have it installed`;
}
