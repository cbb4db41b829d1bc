import { IpxeSettings, ipxeUrl, type PxeIdentity } from './ipxe-settings.ts';

export type FetchedImage = { kind: 'script'; text: string } | { kind: 'binary'; bytes: number };

/** What the interpreter needs from the world: downloads, time and a console. */
export interface IpxeHost {
  /** Downloads an image; rejects with an Error whose message says why (HTTP 404, short read, …). */
  fetch(url: URL): Promise<FetchedImage>;
  sleep(ms: number): Promise<void>;
  echo(text: string): void;
}

export type IpxeOutcome =
  /** A kernel (or other binary image) was executed: the machine left iPXE to run it. */
  | { kind: 'booted'; image: string; cmdline: string; initrds: string[] }
  /** iPXE gave the machine back to the firmware (`exit`, or the script ended): it boots from local disk. */
  | { kind: 'exit'; code: number; reason: 'exit command' | 'end of script' }
  | { kind: 'sanboot'; args: string }
  | { kind: 'reboot' }
  | { kind: 'poweroff' }
  | { kind: 'error'; error: string };

export interface IpxeLimits {
  /** Commands executed in all, so a `goto` loop ends (default 10,000). */
  maxCommands?: number;
  /** Scripts chained inside each other (default 8). */
  maxDepth?: number;
}

interface Image {
  name: string;
  url: string;
  fetched: FetchedImage;
  cmdline: string;
}

/** A command failed; unless `||` catches it, the script stops with this error. */
class CommandFailed extends Error {}

/** The machine leaves iPXE: unwinds every script. */
class Leave {
  readonly outcome: IpxeOutcome;
  constructor(outcome: IpxeOutcome) {
    this.outcome = outcome;
  }
}

/** `exit` ends the current script with a status; the script that chained it goes on. */
class ScriptExit {
  readonly code: number;
  constructor(code: number) {
    this.code = code;
  }
}

/** `chain --replace` ran: the calling script ends quietly. */
class Replaced {}

interface ImageOptions {
  name?: string;
  /** `--replace`: the new image takes the place of the running script, which does not go on afterwards. */
  replace?: boolean;
  args: string[];
}

/** iPXE's option syntax for image commands: --name/-n NAME, --autofree/-a, --replace/-r, --timeout/-t MS, then URL and arguments. */
function imageOptions(args: string[]): ImageOptions {
  const options: ImageOptions = { args: [] };
  let i = 0;
  for (; i < args.length && args[i].startsWith('-'); i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (flag === '-n' || flag === '--name') options.name = inline ?? args[++i];
    else if (flag === '-r' || flag === '--replace') options.replace = true;
    else if (flag === '-t' || flag === '--timeout') {
      if (inline === undefined) i++;
    } else if (flag !== '-a' && flag !== '--autofree') throw new CommandFailed(`unknown option ${flag}`);
  }
  options.args = args.slice(i);
  return options;
}

function split(line: string): string[] {
  const tokens: string[] = [];
  for (const match of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) {
    const token = match[1] ?? match[2] ?? match[3];
    if (match[3]?.startsWith('#')) break;
    tokens.push(token);
  }
  return tokens;
}

// Commands that configure hardware or the console: nothing to simulate, they succeed.
const noOps = new Set([
  'dhcp',
  'ifopen',
  'ifconf',
  'ifclose',
  'ifstat',
  'route',
  'ntp',
  'console',
  'colour',
  'cpair',
  'params',
  'param',
  'cpuid',
  'menu',
]);

class Interpreter {
  readonly #settings: IpxeSettings;
  readonly #host: IpxeHost;
  readonly #maxCommands: number;
  readonly #maxDepth: number;
  readonly #items: string[] = [];
  #images: Image[] = [];
  #selected: Image | null = null;
  #commands = 0;
  /** A script ended with `exit 0`: when iPXE then runs out of script, it was asked to leave. */
  #exited = false;

  constructor(identity: PxeIdentity, host: IpxeHost, limits: IpxeLimits) {
    this.#settings = new IpxeSettings(identity);
    this.#host = host;
    this.#maxCommands = limits.maxCommands ?? 10_000;
    this.#maxDepth = limits.maxDepth ?? 8;
  }

  /** Runs the image at `url` as `chain` would, and says how the machine left iPXE. */
  async start(url: string): Promise<IpxeOutcome> {
    try {
      await this.#execute(await this.#fetch('chain', url, null, {}), 0);
      return { kind: 'exit', code: 0, reason: this.#exited ? 'exit command' : 'end of script' };
    } catch (thrown) {
      if (thrown instanceof Leave) return thrown.outcome;
      if (thrown instanceof ScriptExit) return { kind: 'exit', code: thrown.code, reason: 'exit command' };
      if (thrown instanceof CommandFailed) return { kind: 'error', error: thrown.message };
      throw thrown;
    }
  }

  async #execute(image: Image, depth: number): Promise<void> {
    if (image.fetched.kind === 'binary') {
      const initrds = this.#images.filter((other) => other !== image && other.fetched.kind === 'binary').map((other) => other.url);
      throw new Leave({ kind: 'booted', image: image.url, cmdline: image.cmdline, initrds });
    }
    if (depth >= this.#maxDepth) throw new CommandFailed(`${image.url}: scripts chained more than ${this.#maxDepth} deep`);
    try {
      await this.#runScript(image.fetched.text, image.url, depth + 1);
    } catch (thrown) {
      if (thrown instanceof Replaced) return;
      if (!(thrown instanceof ScriptExit)) throw thrown;
      if (thrown.code !== 0) throw new CommandFailed(`${image.url}: exit ${thrown.code}`);
      this.#exited = true;
    }
  }

  async #runScript(text: string, url: string, depth: number): Promise<void> {
    if (!/^#!(ipxe|gpxe)\b/.test(text)) throw new CommandFailed(`${url}: not an iPXE script (no #!ipxe line)`);
    const lines = text.split(/\r?\n/);
    const labels = new Map<string, number>();
    lines.forEach((line, index) => {
      const label = /^\s*:(\S+)/.exec(line)?.[1];
      if (label && !labels.has(label)) labels.set(label, index);
    });
    for (let pc = 1; pc < lines.length; ) {
      const jump = await this.#runLine(lines[pc++], url, depth, labels);
      if (jump !== null) pc = jump + 1;
    }
  }

  /** One line: settings expanded first (as iPXE does), then commands joined by `||` and `&&`. Returns a goto target. */
  async #runLine(line: string, url: string, depth: number, labels: Map<string, number>): Promise<number | null> {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(':')) return null;
    const tokens = split(this.#settings.expand(trimmed));
    const sequence: { op: string | null; argv: string[] }[] = [{ op: null, argv: [] }];
    for (const token of tokens) {
      if (token === '||' || token === '&&') sequence.push({ op: token, argv: [] });
      else sequence[sequence.length - 1].argv.push(token);
    }
    let failure: CommandFailed | null = null;
    let jump: number | null = null;
    for (const { op, argv } of sequence) {
      if ((op === '||' && failure === null) || (op === '&&' && failure !== null)) continue;
      failure = null;
      try {
        jump = (await this.#command(argv, url, depth, labels)) ?? jump;
      } catch (thrown) {
        if (!(thrown instanceof CommandFailed)) throw thrown;
        failure = thrown;
      }
    }
    if (failure) throw failure;
    return jump;
  }

  async #command(argv: string[], url: string, depth: number, labels: Map<string, number>): Promise<number | null> {
    if (argv.length === 0) return null;
    if (++this.#commands > this.#maxCommands) throw new CommandFailed(`more than ${this.#maxCommands} commands run: a loop?`);
    const [name, ...args] = argv;
    if (noOps.has(name)) return null;
    switch (name) {
      case 'echo':
        this.#host.echo((args[0] === '-n' ? args.slice(1) : args).join(' '));
        return null;
      case 'set':
        if (args.length < 2) this.#settings.clear(args[0] ?? '');
        else this.#settings.set(args[0], args.slice(1).join(' '));
        return null;
      case 'clear':
        this.#settings.clear(args[0] ?? '');
        return null;
      case 'isset':
        if ((args[0] ?? '') === '') throw new CommandFailed('isset: not set');
        return null;
      case 'iseq':
        if ((args[0] ?? '') !== (args[1] ?? '')) throw new CommandFailed(`iseq: "${args[0] ?? ''}" is not "${args[1] ?? ''}"`);
        return null;
      case 'goto': {
        const target = labels.get(args[0] ?? '');
        if (target === undefined) throw new CommandFailed(`goto: no label "${args[0] ?? ''}"`);
        return target;
      }
      case 'sleep':
        await this.#host.sleep(Math.max(0, Number(args[0]) || 0) * 1000);
        return null;
      case 'prompt':
        return this.#prompt(args);
      case 'item':
        this.#items.push(args.filter((arg) => !arg.startsWith('-'))[0] ?? '');
        return null;
      case 'choose':
        return this.#choose(args);
      case 'exit':
        throw new ScriptExit(Number(args[0]) || 0);
      case 'reboot':
        throw new Leave({ kind: 'reboot' });
      case 'poweroff':
        throw new Leave({ kind: 'poweroff' });
      case 'sanboot':
        throw new Leave({ kind: 'sanboot', args: args.join(' ') });
      case 'shell':
      case 'login':
        throw new Leave({ kind: 'error', error: `${name}: waits for a person at the console` });
      default:
        await this.#imageCommand(name, args, url, depth);
        return null;
    }
  }

  async #prompt(args: string[]): Promise<null> {
    const index = args.findIndex((arg) => arg === '--timeout' || arg === '-t');
    // Nobody presses a key: with a timeout the prompt fails when it runs out; without one it would wait for ever.
    if (index < 0) throw new Leave({ kind: 'error', error: 'prompt: waits for a key press' });
    await this.#host.sleep(Math.max(0, Number(args[index + 1]) || 0));
    throw new CommandFailed('prompt: no key pressed');
  }

  #choose(args: string[]): null {
    let choice: string | undefined;
    const rest: string[] = [];
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '--default' || args[i] === '-d') choice = args[++i];
      else if (args[i] === '--timeout' || args[i] === '-t') i++;
      else if (!args[i].startsWith('-')) rest.push(args[i]);
    }
    choice ??= this.#items.find((item) => item !== '');
    if (!choice || rest.length === 0) throw new CommandFailed('choose: nothing to choose');
    this.#settings.set(rest[0], choice);
    this.#items.length = 0;
    return null;
  }

  async #imageCommand(name: string, args: string[], url: string, depth: number): Promise<void> {
    switch (name) {
      case 'kernel':
      case 'imgselect':
      case 'imgload': {
        const options = imageOptions(args);
        this.#selected = await this.#fetch(name, options.args[0], url, options);
        return;
      }
      case 'initrd':
      case 'imgfetch':
      case 'module': {
        const options = imageOptions(args);
        await this.#fetch(name, options.args[0], url, options);
        return;
      }
      case 'chain':
      case 'imgexec': {
        const options = imageOptions(args);
        const named = name === 'imgexec' ? this.#find(options.args[0]) : null;
        const image = named ?? (await this.#fetch(name, options.args[0], url, options));
        await this.#execute(image, depth);
        // The chained script has ended; with --replace there is no calling script to go back to.
        if (options.replace) throw new Replaced();
        return;
      }
      case 'boot': {
        const image = args[0] ? this.#find(args[0]) : this.#selected;
        if (!image) throw new CommandFailed('boot: no image selected');
        return this.#execute(image, depth);
      }
      case 'imgargs': {
        const image = this.#find(args[0]);
        if (!image) throw new CommandFailed(`imgargs: no image "${args[0] ?? ''}"`);
        image.cmdline = args.slice(1).join(' ');
        return;
      }
      case 'imgfree':
        this.#images = args[0] ? this.#images.filter((image) => image.name !== args[0]) : [];
        if (!this.#images.includes(this.#selected as Image)) this.#selected = null;
        return;
      default:
        throw new CommandFailed(`${name}: command not found`);
    }
  }

  #find(name: string | undefined): Image | null {
    return name ? (this.#images.find((image) => image.name === name) ?? null) : null;
  }

  async #fetch(command: string, target: string | undefined, base: string | null, options: Partial<ImageOptions>): Promise<Image> {
    if (!target) throw new CommandFailed(`${command}: no URL given`);
    let url: URL;
    try {
      url = ipxeUrl(target, base);
    } catch {
      throw new CommandFailed(`${command}: "${target}" is not a URL`);
    }
    let fetched: FetchedImage;
    try {
      fetched = await this.#host.fetch(url);
    } catch (error) {
      throw new CommandFailed(`${command} ${url.href}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const image: Image = {
      name: options.name ?? url.pathname.split('/').pop() ?? url.href,
      url: url.href,
      fetched,
      cmdline: (options.args ?? []).slice(1).join(' '),
    };
    this.#images.push(image);
    return image;
  }
}

/** Runs what `url` serves as iPXE would chain it: scripts are interpreted, a binary image is booted. */
export function runIpxe(url: string, identity: PxeIdentity, host: IpxeHost, limits: IpxeLimits = {}): Promise<IpxeOutcome> {
  return new Interpreter(identity, host, limits).start(url);
}
