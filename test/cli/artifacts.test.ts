import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from '../support/harness.ts';
import { runCli, runCliOnTerminal, tempDir } from './cli-process.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('muster artifact against a real server', () => {
  let h: Harness;
  let env: Record<string, string>;
  const dir = tempDir('muster-artifacts-');
  const kernel = randomBytes(200_000);
  const kernelSha = sha256(kernel);
  const kernelPath = join(dir, 'bzImage');
  const cli = (args: string[], token?: string) => runCli(args, { env: token ? { ...env, MUSTER_TOKEN: token } : env });

  before(async () => {
    h = await startHarness('sqlite');
    env = { MUSTER_SERVER: `http://127.0.0.1:${(h.muster.app.server.address() as AddressInfo).port}`, MUSTER_TOKEN: h.admin };
    await writeFile(kernelPath, kernel);
  });
  after(async () => {
    await h?.muster.close();
    await h?.database.drop();
  });

  test('add uploads a file and prints its sha256 and size; the same file again is not sent twice', async () => {
    const first = await cli(['artifact', 'add', kernelPath]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`^sha256: +${kernelSha}$`, 'm'));
    assert.match(first.stdout, /^size: +200000 bytes \(195\.3 KiB\)$/m);
    assert.match(first.stdout, /^file: +bzImage$/m);
    assert.equal(first.stderr, `uploaded ${kernelPath}\n`);

    const again = await cli(['artifact', 'add', kernelPath]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, first.stdout);
    assert.match(again.stderr, /has this content already .*nothing was uploaded/);
    assert.equal((await h.request('GET', '/api/v1/artifacts')).body.items.length, 1);

    const always = await cli(['artifact', 'add', kernelPath, '--always']);
    assert.deepEqual([always.code, always.stdout, always.stderr], [0, first.stdout, `uploaded ${kernelPath}\n`]);
  });

  test('add --name publishes the name; --json gives the artifact and whether it was sent', async () => {
    const path = join(dir, 'ipxe.efi');
    const data = randomBytes(5000);
    await writeFile(path, data);
    const added = await cli(['--json', 'artifact', 'add', path, '--name', 'ipxe.efi']);
    assert.equal(added.code, 0, added.stderr);
    const body = JSON.parse(added.stdout);
    assert.deepEqual(
      { ...body, created_at: typeof body.created_at },
      {
        sha256: sha256(data),
        size: 5000,
        name: 'ipxe.efi',
        names: ['ipxe.efi'],
        created_by: 'user:admin',
        created_at: 'string',
        uploaded: true,
      },
    );
    const existing = await cli(['--json', 'artifact', 'add', kernelPath, '--name', 'registration/bzImage']);
    assert.equal(existing.code, 0, existing.stderr);
    assert.deepEqual([JSON.parse(existing.stdout).names, JSON.parse(existing.stdout).uploaded], [['registration/bzImage'], false]);
  });

  test('ls lists artifacts and, with --names, the published names', async () => {
    const ls = await cli(['artifact', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    const lines = ls.stdout.trim().split('\n');
    assert.match(lines[0], /^SHA256 +SIZE +FILE +PUBLISHED AS +CREATED$/);
    assert.ok(
      lines.some((l) => l.startsWith(kernelSha) && /195\.3 KiB +bzImage +registration\/bzImage /.test(l)),
      ls.stdout,
    );
    const names = await cli(['artifact', 'ls', '--names']);
    assert.equal(names.code, 0, names.stderr);
    assert.match(names.stdout, new RegExp(`^registration/bzImage +${kernelSha} +195\\.3 KiB `, 'm'));
    const json = JSON.parse((await cli(['--json', 'artifact', 'ls'])).stdout);
    assert.deepEqual(json.map((a: { name: string }) => a.name).sort(), ['bzImage', 'ipxe.efi']);
  });

  test('show takes a sha256 or a published name', async () => {
    const bySha = await cli(['artifact', 'show', kernelSha]);
    const byName = await cli(['artifact', 'show', 'registration/bzImage']);
    assert.equal(bySha.code, 0, bySha.stderr);
    assert.equal(byName.stdout, bySha.stdout);
    assert.match(bySha.stdout, /^published as: registration\/bzImage$/m);
    assert.match(bySha.stdout, /^created: +\S+ by user:admin$/m);
  });

  test('get writes the content to a file, or to stdout with -o -', async () => {
    const out = join(dir, 'downloaded');
    const got = await cli(['artifact', 'get', 'registration/bzImage', '-o', out]);
    assert.equal(got.code, 0, got.stderr);
    assert.ok((await readFile(out)).equals(kernel));
    assert.equal(got.stderr, `wrote 200000 bytes to ${out} (sha256 ${kernelSha})\n`);

    const text = join(dir, 'cmdline.txt');
    await writeFile(text, 'console=ttyS0 root=/dev/nfs\n');
    const textSha = JSON.parse((await cli(['--json', 'artifact', 'add', text])).stdout).sha256;
    const stdout = await cli(['artifact', 'get', textSha, '-o', '-']);
    assert.deepEqual([stdout.code, stdout.stdout, stdout.stderr], [0, 'console=ttyS0 root=/dev/nfs\n', '']);
  });

  test('publish points a name, unpublish removes it, rm deletes an artifact no name uses', async () => {
    const published = await cli(['artifact', 'publish', 'undionly.kpxe', kernelSha]);
    assert.deepEqual([published.code, published.stdout], [0, `published undionly.kpxe as ${kernelSha} (195.3 KiB)\n`]);

    const refused = await cli(['artifact', 'rm', kernelSha]);
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /^muster: Artifact \w+ is still published as registration\/bzImage, undionly\.kpxe; unpublish it/);

    for (const name of ['undionly.kpxe', 'registration/bzImage']) {
      const unpublished = await cli(['artifact', 'unpublish', name]);
      assert.deepEqual([unpublished.code, unpublished.stdout], [0, `unpublished ${name}\n`]);
    }
    const removed = await cli(['artifact', 'rm', kernelSha]);
    assert.deepEqual([removed.code, removed.stdout], [0, `deleted artifact ${kernelSha}\n`]);
    const gone = await cli(['artifact', 'show', kernelSha]);
    assert.equal(gone.code, 3);
    assert.match(gone.stderr, /^muster: No artifact/);
  });

  test('bad input: a missing file, a malformed digest, a bad name, an unknown name, no -o', async () => {
    const cases: [string[], number, RegExp][] = [
      [['artifact', 'add', join(dir, 'nope')], 2, /^muster: no such file: .*nope$/m],
      [['artifact', 'add', dir], 2, /is not a regular file/],
      [['artifact', 'rm', 'abc123'], 2, /sha256/],
      [['artifact', 'publish', 'ipxe.efi', 'not-a-digest'], 2, /sha256/],
      [['artifact', 'publish', '../escape', 'a'.repeat(64)], 2, /name/],
      [['artifact', 'show', 'no/such/name'], 3, /Nothing is published as no\/such\/name/],
      [['artifact', 'get', 'ipxe.efi'], 2, /--output/],
    ];
    for (const [args, code, message] of cases) {
      const result = await cli(args);
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
      assert.equal(result.stdout, '', args.join(' '));
    }
    assert.deepEqual(await readdir(dir).then((names) => names.filter((n) => n.endsWith('.part'))), []);
  });

  test('a viewer may list but not upload (exit 5)', async () => {
    const viewer = await h.userToken('viewer');
    assert.equal((await cli(['artifact', 'ls'], viewer)).code, 0);
    const refused = await cli(['artifact', 'add', join(dir, 'ipxe.efi'), '--name', 'other.efi'], viewer);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, /^muster: Role viewer may not artifact write/);
  });

  test('on a terminal, add and get show progress with rate and time taken; piped, they do not', async () => {
    const path = join(dir, 'kernel8.img');
    await writeFile(path, randomBytes(48 * 1024 * 1024));
    const added = await runCliOnTerminal(['artifact', 'add', path], { env });
    assert.equal(added.code, 0, added.stdout);
    assert.match(added.stdout, new RegExp(`\\ruploading ${path}: 100% 48\\.0 MiB of 48\\.0 MiB, [\\d.]+ [KMG]iB/s, in \\d+s *\\r?\\n`));
    const output = join(dir, 'kernel8.copy');
    const sha = sha256(await readFile(path));
    const fetched = await runCliOnTerminal(['artifact', 'get', sha, '-o', output], { env });
    assert.equal(fetched.code, 0, fetched.stdout);
    assert.match(fetched.stdout, /\rdownloading kernel8\.img: 100% 48\.0 MiB of 48\.0 MiB, [\d.]+ [KMG]iB\/s, in \d+s/);
    const piped = await cli(['artifact', 'add', path, '--always']);
    assert.equal(piped.stderr, `uploaded ${path}\n`);
  });
});
