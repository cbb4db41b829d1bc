import { createInterface } from 'node:readline/promises';
import { MusterError } from '@muster/contract/errors.ts';

/** All of stdin, minus one trailing newline (what `echo secret |` and `<<<` add). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return stripOneNewline(Buffer.concat(chunks).toString('utf8'));
}

export function stripOneNewline(text: string): string {
  return text.replace(/\r?\n$/, '');
}

export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

/** Asks on the terminal; the answer is echoed. */
export async function promptLine(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** Asks on the terminal without echoing what is typed. */
export function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  // Echo goes off before the question appears, so nothing typed after it can be echoed.
  stdin.setRawMode(true);
  process.stderr.write(question);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let answer = '';
    const finish = (error: Error | null) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(answer);
    };
    const onData = (data: Buffer) => {
      for (const char of data.toString('utf8')) {
        if (char === '\r' || char === '\n' || char === '\u0004') return finish(null);
        if (char === '\u0003') return finish(new MusterError('bad_request', 'cancelled'));
        if (char === '\u007f' || char === '\b') answer = [...answer].slice(0, -1).join('');
        else if (char >= ' ') answer += char;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * A password from stdin (`--password-stdin`) or, on a terminal, typed twice without echo.
 * `what` names it in prompts and errors, e.g. "password for alice".
 */
export async function readPassword(options: { fromStdin: boolean; confirm: boolean; what: string }): Promise<string> {
  if (options.fromStdin) {
    const password = await readStdin();
    if (password === '')
      throw new MusterError('bad_request', `--password-stdin was given but stdin was empty: pipe the ${options.what} in`);
    return password;
  }
  if (!canPrompt()) {
    throw new MusterError('bad_request', `no terminal to ask for the ${options.what}: pipe it in with --password-stdin`);
  }
  const password = await promptHidden(`${capitalize(options.what)}: `);
  if (password === '') throw new MusterError('bad_request', `the ${options.what} is empty`);
  if (options.confirm && (await promptHidden(`Repeat the ${options.what}: `)) !== password) {
    throw new MusterError('bad_request', 'the two passwords differ; nothing was changed');
  }
  return password;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
