import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { testTool } from '../tools/list.ts';

export const qemuBinary = 'qemu-system-x86_64';

const setpriv = '/usr/bin/setpriv';

const installHint = `apt-get install ${testTool('qemu-system-x86_64').package} ${testTool('iPXE ROM for QEMU').package}`;

/**
 * Why the QEMU tests cannot run here, or undefined when they can. In CI (CI=true) a missing QEMU is not a
 * reason to skip: the tests then run and fail with this message.
 */
export function qemuSkipReason(): string | undefined {
  if (process.env.CI === 'true' || qemuFound()) return undefined;
  return `${qemuBinary} is not installed (${installHint}); QEMU boot tests skipped`;
}

function qemuFound(): boolean {
  const probe = spawnSync(qemuBinary, ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

export interface VmOptions {
  /** The DHCP boot file iPXE fetches. A URL on 127.0.0.1 or localhost is rewritten to 10.0.2.2, the host as the guest sees it. */
  bootUrl: string;
  mac: string;
  /** SMBIOS system UUID. */
  uuid: string;
  /** SMBIOS system serial number. */
  serial?: string;
  memoryMb?: number;
  /** Network card QEMU emulates; each has its own iPXE ROM from ipxe-qemu. */
  nic?: 'e1000' | 'virtio-net-pci';
  /** The raw serial console is appended to this file as it arrives, for debugging. */
  logFile?: string;
}

export interface Vm {
  pid: number;
  /** The serial console so far, with terminal escapes, backspaces and carriage returns removed. */
  output(): string;
  /** Resolves with the first match of `pattern` in the console; rejects on timeout or when QEMU exits first. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Kills QEMU and waits until it is gone. Safe to call twice. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

// A test runner that exits without calling stop() (a failed before(), an uncaught error) takes its VMs along.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function guestUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.hostname === '127.0.0.1' || parsed.hostname === 'localhost') parsed.hostname = '10.0.2.2';
  return parsed.toString();
}

export function qemuArgs(options: VmOptions): string[] {
  const bootUrl = guestUrl(options.bootUrl);
  if (/[,\s]/.test(bootUrl)) throw new Error(`bootUrl must not contain commas or spaces (QEMU option syntax): ${bootUrl}`);
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(options.mac)) throw new Error(`mac must look like 52:54:00:12:34:56, not ${options.mac}`);
  if (!/^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$/i.test(options.uuid)) throw new Error(`uuid must be a UUID, not ${options.uuid}`);
  if (options.serial !== undefined && !/^[\w.-]+$/.test(options.serial))
    throw new Error(`serial must be letters, digits, '.', '_' or '-', not ${options.serial}`);
  const smbios = [`type=1`, `uuid=${options.uuid}`, ...(options.serial ? [`serial=${options.serial}`] : [])].join(',');
  return [
    ...['-accel', 'tcg', '-machine', 'pc', '-m', String(options.memoryMb ?? 128), '-smp', '1'],
    // -nographic makes SeaBIOS copy the 80-column text screen, iPXE's console included, to the serial port
    // (Debian's iPXE ROMs have no serial console of their own); long lines arrive wrapped at column 80.
    ...['-nographic', '-monitor', 'none', '-parallel', 'none', '-serial', 'stdio'],
    // Network boot only; when iPXE gives up, SeaBIOS reboots at once and -no-reboot turns that into an exit.
    ...['-boot', 'order=n,strict=on,reboot-timeout=0', '-no-reboot'],
    ...['-netdev', `user,id=n0,bootfile=${bootUrl}`, '-device', `${options.nic ?? 'e1000'},netdev=n0,mac=${options.mac.toLowerCase()}`],
    ...['-smbios', smbios],
  ];
}

/** The console text a person would have seen: no colour codes, no erased characters, no carriage returns. */
export function consoleText(raw: string): string {
  let text = raw.replace(/\x1b(\[[0-9;?]*[A-Za-z]|[c78])/g, '').replace(/\r/g, '');
  // iPXE erases its prompts and spinners with "\b \b"; a backspace takes back the character before it.
  const erased = /[^\n\x08]\x08/g;
  for (let before = ''; before !== text; ) {
    before = text;
    text = text.replace(erased, '');
  }
  return text.replace(/\x08/g, '');
}

/** Starts an x86 PC with no disk that network boots with iPXE against `bootUrl`, under software emulation. */
export function startVm(options: VmOptions): Vm {
  const args = qemuArgs(options);
  // On Linux, setpriv ties QEMU's life to this process even when it dies by SIGKILL; it execs, so the PID is QEMU's.
  const [command, argv]: [string, string[]] = existsSync(setpriv)
    ? [setpriv, ['--pdeathsig', 'KILL', qemuBinary, ...args]]
    : [qemuBinary, args];
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let raw = '';
  let stderr = '';
  let spawnError: Error | undefined;
  let closed = false;
  if (options.logFile) writeFileSync(options.logFile, `# ${qemuBinary} ${args.join(' ')}\n`);
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of waiters) waiter();
  };
  child.stdout?.setEncoding('latin1').on('data', (chunk: string) => {
    raw += chunk;
    if (options.logFile) appendFileSync(options.logFile, chunk, 'latin1');
    wake();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.on('error', (error) => {
    spawnError = error;
    wake();
  });
  const gone = new Promise<void>((resolve) =>
    child.once('close', () => {
      closed = true;
      running.delete(child);
      wake();
      resolve();
    }),
  );
  // 'close' comes after the last console byte has been read, so a pattern printed just before exit is still found.
  const ended = () => spawnError !== undefined || closed;
  const describeEnd = () => {
    if (spawnError) return `${qemuBinary} could not start (${spawnError.message}); install it: ${installHint}`;
    const hint = child.exitCode === 127 ? `; install it: ${installHint}` : '';
    return `${qemuBinary} exited (${child.exitCode ?? child.signalCode})${stderr ? `: ${stderr.trim()}` : ''}${hint}`;
  };

  const vm: Vm = {
    pid: child.pid ?? -1,
    output: () => consoleText(raw),
    waitForOutput(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = vm.output().match(pattern);
          if (match) finish(() => resolve(match));
          else if (ended())
            finish(() => reject(new Error(`${describeEnd()} before the console showed ${pattern}; console:\n${tail(vm.output())}`)));
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`console did not show ${pattern} within ${timeoutMs} ms; console:\n${tail(vm.output())}`))),
          timeoutMs,
        );
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (!spawnError) await gone;
      running.delete(child);
    },
  };
  return vm;
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}
