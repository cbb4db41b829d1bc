import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TftpServerOptions } from '../../packages/server/src/boot/tftp/server.ts';
import {
  atftpGet,
  type ClientResult,
  clientFailed,
  curlGet,
  curlPut,
  eachThreadMode,
  fixtureFiles,
  listTree,
  type RunningTftp,
  secretContent,
  sha256,
  startTftp,
  tftpHpaGet,
  tftpHpaPut,
  waitFor,
} from './support.ts';

type Client = 'tftp-hpa' | 'atftp' | 'curl';

interface Variant {
  client: Client;
  label: string;
  get(t: RunningTftp, name: string, out: string): Promise<ClientResult>;
}

const variants: Variant[] = [
  // tftp-hpa 5.2 sends no options at all (its client has no blksize/tsize support): RFC 1350 only.
  { client: 'tftp-hpa', label: 'without options', get: (t, name, out) => tftpHpaGet(t.host, t.port, name, out) },
  { client: 'atftp', label: 'without options', get: (t, name, out) => atftpGet(t.host, t.port, name, out) },
  {
    client: 'atftp',
    label: 'with blksize 1468, tsize, windowsize 8',
    get: (t, name, out) => atftpGet(t.host, t.port, name, out, ['blksize 1468', 'tsize 0', 'windowsize 8']),
  },
  {
    client: 'atftp',
    label: 'with blksize 512, windowsize 16',
    get: (t, name, out) => atftpGet(t.host, t.port, name, out, ['blksize 512', 'windowsize 16']),
  },
  {
    client: 'curl',
    label: 'without options',
    get: (t, name, out) => curlGet(t.host, t.port, encodeName(name), out, ['--tftp-no-options']),
  },
  // curl always asks for tsize, blksize and timeout unless told --tftp-no-options.
  {
    client: 'curl',
    label: 'with blksize 512',
    get: (t, name, out) => curlGet(t.host, t.port, encodeName(name), out, ['--tftp-blksize', '512']),
  },
  {
    client: 'curl',
    label: 'with blksize 1468',
    get: (t, name, out) => curlGet(t.host, t.port, encodeName(name), out, ['--tftp-blksize', '1468']),
  },
  {
    client: 'curl',
    label: 'with blksize 8192',
    get: (t, name, out) => curlGet(t.host, t.port, encodeName(name), out, ['--tftp-blksize', '8192']),
  },
];

/** curl URL-decodes the path into the TFTP file name: encoding every byte keeps the name exact. */
function encodeName(name: string): string {
  return Array.from(Buffer.from(name, 'latin1'), (b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

/** The served files the clients fetch (the rollover and Sorcerer fixtures are for the raw tests). */
const files = ['big.bin', 'exact512.bin', 'exact1024.bin', 'empty.bin', 'text.txt', 'aa112233/config.txt'];

const traversalNames = [
  '../etc/passwd',
  '/../../etc/passwd',
  '..\\..\\etc\\passwd',
  'aa112233/../../x',
  '../x',
  '../secret.txt',
  '%2e%2e/etc/passwd',
  '%2e%2e/x',
  'escape.txt', // a symlink inside the root pointing out of it
  // 600 characters that a naive join resolves to base/x, beside the root.
  `${'./'.repeat(298)}../x`,
];

/** Output of a failed transfer: no file, or an empty one (tftp-hpa creates the file before it asks). */
function assertNoContent(out: string, result: ClientResult) {
  if (!existsSync(out)) return;
  const content = readFileSync(out);
  assert.ok(!content.toString('latin1').includes(secretContent.trim()), `the secret outside the root was served!\n${result.output}`);
  assert.equal(content.length, 0, `a refused transfer left ${content.length} bytes in the output\n${result.output}`);
}

interface Setup {
  name: string;
  options: Partial<TftpServerOptions>;
  clients: Client[];
  /** Which variants per client to run (all when absent). */
  variantFilter?: (v: Variant) => boolean;
}

const setups: Setup[] = [
  { name: 'IPv4, a new port per transfer (RFC 1350)', options: {}, clients: ['tftp-hpa', 'atftp', 'curl'] },
  { name: 'IPv4, singlePort', options: { singlePort: true }, clients: ['tftp-hpa', 'atftp', 'curl'] },
  {
    name: 'IPv6 (::1)',
    options: { host: '::1' },
    clients: ['tftp-hpa', 'atftp', 'curl'],
    variantFilter: (v) => v.client !== 'atftp' || v.label.includes('1468'),
  },
  {
    name: 'dual stack (::), reached over 127.0.0.1 and ::1',
    options: { host: '::' },
    clients: ['curl'],
    variantFilter: (v) => v.label.includes('1468') || v.label.includes('without'),
  },
];

eachThreadMode(() => {
  for (const setup of setups) {
    describe(`TFTP with real clients, ${setup.name}`, () => {
      let t: RunningTftp;
      let outDir: string;
      let rootBefore: string[];

      before(async () => {
        t = await startTftp(setup.options);
        outDir = mkdtempSync(join(tmpdir(), 'muster-tftp-out-'));
        rootBefore = listTree(t.fixtures.root);
      });

      after(async () => {
        await t?.stop();
        if (outDir) rmSync(outDir, { recursive: true, force: true });
      });

      let counter = 0;
      const outPath = () => join(outDir, `out-${++counter}`);

      for (const variant of variants) {
        if (!setup.clients.includes(variant.client)) continue;
        if (setup.variantFilter && !setup.variantFilter(variant)) continue;
        for (const name of files) {
          // curl 7.88 refuses an OACK whose tsize is 0 ("invalid tsize value in OACK packet", exit 71) although
          // RFC 2349 allows it: with options, curl cannot fetch an empty file from any server that answers tsize.
          // The empty file is covered by curl --tftp-no-options, tftp-hpa and atftp; the OACK by protocol.test.ts.
          if (variant.client === 'curl' && name === 'empty.bin' && variant.label !== 'without options') continue;
          test(`${variant.client} ${variant.label} fetches ${name} byte for byte`, async () => {
            const out = outPath();
            const result = await variant.get(t, name, out);
            assert.equal(result.code, 0, result.output);
            assert.ok(existsSync(out), `no output file\n${result.output}`);
            const got = readFileSync(out);
            const want = fixtureFiles[name];
            assert.equal(got.length, want.length, `length differs\n${result.output}`);
            assert.equal(sha256(got), sha256(want), `content differs\n${result.output}`);
          });
        }
      }

      if (setup.name.startsWith('dual stack')) {
        test('curl fetches big.bin over 127.0.0.1 from a server listening on ::', async () => {
          const out = outPath();
          const result = await curlGet('127.0.0.1', t.port, 'big.bin', out, ['--tftp-blksize', '1468']);
          assert.equal(result.code, 0, result.output);
          assert.equal(sha256(readFileSync(out)), sha256(fixtureFiles['big.bin']), result.output);
        });
        return;
      }

      if (setup.clients.includes('tftp-hpa')) {
        test('tftp-hpa in netascii mode gets the LF text back unchanged (LF went as CR LF on the wire)', async () => {
          const out = outPath();
          const result = await tftpHpaGet(t.host, t.port, 'text.txt', out, 'ascii');
          assert.ok(!clientFailed(result), result.output);
          assert.equal(sha256(readFileSync(out)), sha256(fixtureFiles['text.txt']), result.output);
        });

        test('tftp-hpa in netascii mode gets a CR and a CR LF in the file back unchanged (CR NUL on the wire)', async () => {
          const out = outPath();
          const result = await tftpHpaGet(t.host, t.port, 'cr.txt', out, 'ascii');
          assert.ok(!clientFailed(result), result.output);
          assert.deepEqual(readFileSync(out), fixtureFiles['cr.txt'], result.output);
        });
      }

      for (const client of setup.clients) {
        test(`${client}: a missing file fails and leaves no content`, async () => {
          const out = outPath();
          const result =
            client === 'tftp-hpa'
              ? await tftpHpaGet(t.host, t.port, 'no-such-file.bin', out)
              : client === 'atftp'
                ? await atftpGet(t.host, t.port, 'no-such-file.bin', out, ['tsize 0'])
                : await curlGet(t.host, t.port, 'no-such-file.bin', out);
          assert.ok(clientFailed(result), `the client did not report a failure\n${result.output}`);
          assertNoContent(out, result);
          if (client === 'curl') assert.equal(result.code, 68, `curl exits 68 for TFTP "file not found"\n${result.output}`);
          if (client === 'tftp-hpa') assert.match(result.output, /Error code 1\b/, result.output);
        });

        test(`${client}: a directory is not served`, async () => {
          const out = outPath();
          const result =
            client === 'tftp-hpa'
              ? await tftpHpaGet(t.host, t.port, 'aa112233', out)
              : client === 'atftp'
                ? await atftpGet(t.host, t.port, 'aa112233', out)
                : await curlGet(t.host, t.port, 'aa112233', out, ['--tftp-no-options']);
          assert.ok(clientFailed(result), `the client did not report a failure\n${result.output}`);
          assertNoContent(out, result);
        });

        for (const name of traversalNames) {
          const shown = name.length > 60 ? `${name.slice(0, 20)}…(${name.length} characters)` : name;
          test(`${client}: traversal name ${JSON.stringify(shown)} is refused with no content`, async () => {
            const out = outPath();
            const result =
              client === 'tftp-hpa'
                ? await tftpHpaGet(t.host, t.port, name, out)
                : client === 'atftp'
                  ? await atftpGet(t.host, t.port, name, out)
                  : await curlGet(t.host, t.port, encodeName(name), out, ['--tftp-no-options']);
            assert.ok(clientFailed(result), `the client did not report a failure\n${result.output}`);
            assertNoContent(out, result);
            assert.ok(!result.output.includes(t.fixtures.base), `an error message names a server path\n${result.output}`);
          });
        }
      }

      if (setup.clients.includes('tftp-hpa')) {
        test('tftp-hpa: a put (WRQ) is refused and nothing is written', async () => {
          const local = join(outDir, 'upload.bin');
          writeFileSync(local, 'upload attempt\n');
          const result = await tftpHpaPut(t.host, t.port, local, 'uploaded-by-hpa.bin');
          assert.match(result.output, /Error code [24]\b/, `expected ERROR 2 or 4\n${result.output}`);
          assert.deepEqual(listTree(t.fixtures.root), rootBefore);
        });
      }

      if (setup.clients.includes('curl')) {
        test('curl: an upload (-T, WRQ) is refused and nothing is written', async () => {
          const local = join(outDir, 'upload-curl.bin');
          writeFileSync(local, 'upload attempt\n');
          const result = await curlPut(t.host, t.port, local, 'uploaded-by-curl.bin');
          // curl: 69 = TFTP access violation (ERROR 2), 71 = illegal TFTP operation (ERROR 4).
          assert.ok(result.code === 69 || result.code === 71, `expected curl exit 69 or 71\n${result.output}`);
          assert.deepEqual(listTree(t.fixtures.root), rootBefore);
        });
      }

      test('no transfer is left behind', async () => {
        assert.ok(await waitFor(() => t.server.activeTransfers === 0, 3000), `activeTransfers = ${t.server.activeTransfers}`);
      });
    });
  }
});
