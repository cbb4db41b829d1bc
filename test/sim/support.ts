// biome-ignore-all lint/suspicious/noTemplateCurlyInString: iPXE scripts spell settings ${like-this}
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tftpGet } from '@muster/sim/tftp-client.ts';
import { directoryResolver } from '../../packages/server/src/boot/tftp/directory.ts';
import { TftpServer } from '../../packages/server/src/boot/tftp/server.ts';
import type { TftpRequest } from '../../packages/server/src/boot/tftp/types.ts';
import { missingToolMessage } from '../tools/list.ts';

export interface TftpPeer {
  name: 'muster' | 'tftpd-hpa';
  host: string;
  port: number;
  stop(): Promise<void>;
}

/** A directory tftpd-hpa can serve: it runs as nobody, so the root must be world-readable. */
export function bootRoot(): { root: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'muster-sim-'));
  chmodSync(root, 0o755);
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** muster's TFTP server, in this process, serving `root`; `seen` gets every file name as sent. */
export async function startMusterTftp(root: string, seen: string[] = []): Promise<TftpPeer> {
  const files = directoryResolver(root);
  const server = new TftpServer({
    host: '127.0.0.1',
    port: 0,
    resolve: (request: TftpRequest) => {
      seen.push(request.filename);
      return files(request);
    },
  });
  const { port } = await server.start();
  return { name: 'muster', host: '127.0.0.1', port, stop: () => server.stop() };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** tftpd-hpa's in.tftpd on a free loopback port, serving `root`; ready once it answers a request. */
export async function startTftpdHpa(root: string): Promise<TftpPeer> {
  const port = await freeUdpPort();
  const child = spawn('/usr/sbin/in.tftpd', ['--foreground', '--listen', '--address', `127.0.0.1:${port}`, '--secure', root], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  let spawnError: Error | undefined;
  child.on('error', (error) => (spawnError = error));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const stop = async () => {
    if (spawnError) return;
    if (child.pid !== undefined && child.exitCode === null) child.kill('SIGTERM');
    const stubborn = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited(child);
    clearTimeout(stubborn);
  };
  for (let attempt = 0; attempt < 50; attempt++) {
    if (spawnError) throw new Error(`${missingToolMessage('in.tftpd', 'cannot run')} (${spawnError.message})`);
    if (child.exitCode !== null) throw new Error(`in.tftpd exited with ${child.exitCode}: ${output}`);
    const probe = await tftpGet({ host: '127.0.0.1', port, filename: 'no-such-file', retransmitMs: 50, fileTimeoutMs: 200 });
    if (probe.firstReply !== null) return { name: 'tftpd-hpa', host: '127.0.0.1', port, stop };
  }
  await stop();
  throw new Error(`in.tftpd did not answer on port ${port}: ${output}`);
}

export interface BootHttp {
  url: string;
  /** The raw query strings of GET /ipxe, as they arrived. */
  rawQueries: string[];
  close(): Promise<void>;
}

export const kernelBytes = 2_000_000;
export const initrdBytes = 1_000_000;

/**
 * A small iPXE boot server in the shape muster's is meant to have: /boot.ipxe chains /ipxe with the machine's
 * identity; /ipxe answers `exit` for MACs in `provisioned`, a registration kernel for the rest, and a 404 for
 * MACs in `missing`, and a kernel shorter than its Content-Length to MACs in `shortKernel`.
 */
export async function startBootHttp(
  options: { provisioned?: Set<string>; missing?: Set<string>; shortKernel?: Set<string> } = {},
): Promise<BootHttp> {
  const { createServer } = await import('node:http');
  const rawQueries: string[] = [];
  const body = (size: number) => Buffer.alloc(size, 0x5a);
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    const script = (text: string) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end(text);
    };
    if (url.pathname === '/boot.ipxe') {
      return script(
        '#!ipxe\ndhcp\nchain /ipxe?mac=${net0/mac}&uuid=${uuid}&serial=${serial}&asset=${asset}&manufacturer=${manufacturer}&product=${product:uristring}&buildarch=${buildarch}&platform=${platform}\n',
      );
    }
    if (url.pathname === '/ipxe') {
      rawQueries.push(url.search.slice(1));
      const mac = url.searchParams.get('mac') ?? '';
      if (options.missing?.has(mac)) {
        response.writeHead(404).end();
        return;
      }
      if (options.provisioned?.has(mac)) return script('#!ipxe\necho provisioned: boot from disk\nexit\n');
      if (options.shortKernel?.has(mac)) return script('#!ipxe\nkernel /images/short\nboot\n');
      return script(`#!ipxe\nkernel /images/vmlinuz initrd=initrd.img muster.mac=${mac}\ninitrd /images/initrd.img\nboot\n`);
    }
    if (url.pathname === '/images/vmlinuz' || url.pathname === '/images/initrd.img') {
      const data = body(url.pathname.endsWith('vmlinuz') ? kernelBytes : initrdBytes);
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
      response.end(data);
      return;
    }
    if (url.pathname === '/images/short') {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1000 });
      response.write(body(500));
      response.destroy();
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    rawQueries,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
