// muster's TFTP server alone in its own process, for bench/tftp.ts: a TftpServer with a directoryResolver.
// node bench/tftp-server.ts --root DIR [--host 127.0.0.1] [--port 0] [--workers N] [--max-per-client N]
//   [--request-rate BURST/PERSECOND|off] [--busy-poll-us N]
// Prints one JSON line {"port": N} once it listens; stops on SIGTERM or SIGINT.
import { parseArgs } from 'node:util';
import { directoryResolver } from '../packages/server/src/boot/tftp/directory.ts';
import { TftpServer } from '../packages/server/src/boot/tftp/server.ts';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    workers: { type: 'string' },
    'max-per-client': { type: 'string' },
    'request-rate': { type: 'string' },
    'busy-poll-us': { type: 'string' },
  },
  strict: true,
});
if (!values.root) throw new Error('--root DIR is required');

function count(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} ${raw}: expected a whole number`);
  return value;
}

function requestRate(raw: string): { burst: number; perSecond: number } | null {
  if (raw === 'off') return null;
  const match = /^(\d+)\/(\d+(?:\.\d+)?)$/.exec(raw);
  if (!match) throw new Error(`--request-rate ${raw}: expected BURST/PERSECOND (such as 50/10) or off`);
  return { burst: Number(match[1]), perSecond: Number(match[2]) };
}

const server = new TftpServer({
  host: values.host,
  port: count('port', values.port),
  resolve: directoryResolver(values.root),
  ...(values.workers === undefined ? {} : { workers: count('workers', values.workers) }),
  ...(values['max-per-client'] === undefined ? {} : { maxPerClient: count('max-per-client', values['max-per-client']) }),
  ...(values['request-rate'] === undefined ? {} : { requestRate: requestRate(values['request-rate']) }),
  ...(values['busy-poll-us'] === undefined ? {} : { busyPollUs: count('busy-poll-us', values['busy-poll-us']) }),
  onError: (error) => console.error(`tftp: ${error instanceof Error ? error.message : String(error)}`),
});
const { port } = await server.start();
console.log(JSON.stringify({ port }));
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void server.stop().finally(() => process.exit(0)));
}
