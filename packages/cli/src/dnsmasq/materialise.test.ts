import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { piTree, StandInTreeSource } from '../../../../test/support/stand-in-tree-source.ts';
import { checkTreePath, PiDirectoryMaterialiser } from './materialise.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function setUp(tree = piTree()) {
  const root = mkdtempSync(join(tmpdir(), 'muster-tftp-'));
  dirs.push(root);
  const source = new StandInTreeSource(tree);
  const materialiser = new PiDirectoryMaterialiser({ root, source });
  await materialiser.prepare();
  return { root, source, materialiser };
}

const mode = (path: string) => statSync(path).mode & 0o777;

/** Every file under dir, relative, sorted. */
function listFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('PiDirectoryMaterialiser', () => {
  test('writes the tree into ROOT/<serial>: shared files linked from the cache, templates rendered for the serial', async () => {
    const { root, source, materialiser } = await setUp();
    const result = await materialiser.materialise('abcd1234');
    assert.deepEqual(result, {
      serial: 'abcd1234',
      machine_id: 'm_abcd1234',
      tree: 'pi',
      machine_created: true,
      files: 5,
      rendered: 1,
      cached: 0,
      fetched: 4,
      bytes_fetched: 100_000 + 6 + 31 + 7,
    });
    const dir = join(root, 'abcd1234');
    assert.deepEqual(listFiles(dir), ['cmdline.txt', 'config.txt', 'fixup4.dat', 'overlays/vc4-kms-v3d.dtbo', 'start4.elf']);
    assert.equal(readFileSync(join(dir, 'cmdline.txt'), 'utf8'), piTreeCmdline('abcd1234'));
    assert.deepEqual(readFileSync(join(dir, 'start4.elf')), Buffer.from('start4.elf firmware '.repeat(5000)));
    // Modes a TFTP server running as root or as nobody can read; shared files read-only.
    assert.deepEqual(
      [mode(dir), mode(join(dir, 'overlays')), mode(join(dir, 'start4.elf')), mode(join(dir, 'cmdline.txt'))],
      [0o755, 0o755, 0o444, 0o644],
    );
    const firmware = statSync(join(dir, 'start4.elf'));
    assert.equal(firmware.nlink, 2, 'the cache entry and the serial directory share one inode');
    assert.equal(statSync(join(dir, 'cmdline.txt')).nlink, 1);
    assert.deepEqual(readdirSync(join(root, '.muster', 'tmp')), [], 'no work directory is left behind');
    assert.equal(source.calls.provision, 1);
  });

  test('a second serial fetches only its rendered files; shared ones come from the cache', async () => {
    const { root, source, materialiser } = await setUp();
    await materialiser.materialise('abcd1234');
    const second = await materialiser.materialise('0000beef');
    assert.deepEqual([second?.fetched, second?.cached, second?.rendered, second?.bytes_fetched], [0, 4, 1, 0]);
    assert.deepEqual(Object.fromEntries(source.calls.file), {
      'start4.elf': 1,
      'fixup4.dat': 1,
      'config.txt': 1,
      'overlays/vc4-kms-v3d.dtbo': 1,
      'cmdline.txt': 2,
    });
    assert.equal(readFileSync(join(root, '0000beef', 'cmdline.txt'), 'utf8'), piTreeCmdline('0000beef'));
    assert.equal(statSync(join(root, '0000beef', 'start4.elf')).ino, statSync(join(root, 'abcd1234', 'start4.elf')).ino);
  });

  test('two serials at once fetch each shared file once', async () => {
    const { source, materialiser } = await setUp();
    const results = await Promise.all(['00000001', '00000002', '00000003'].map((s) => materialiser.materialise(s)));
    assert.equal(results.filter((r) => r !== null).length, 3);
    assert.equal(source.calls.file.get('start4.elf'), 1);
    assert.equal(source.calls.file.get('cmdline.txt'), 3);
  });

  test('warming fills the cache with every shared file, so even the first serial fetches only what is rendered for it', async () => {
    const { source, materialiser } = await setUp();
    assert.deepEqual(await materialiser.warm(source), { trees: 1, files: 4, bytes: 100_000 + 6 + 31 + 7 });
    assert.deepEqual(await materialiser.warm(source), { trees: 1, files: 0, bytes: 0 }, 'the second time there is nothing to fetch');
    const first = await materialiser.materialise('abcd1234');
    assert.deepEqual([first?.cached, first?.fetched, first?.rendered], [4, 0, 1]);
    assert.deepEqual(Object.fromEntries(source.calls.file), { 'cmdline.txt': 1 });
    assert.equal(source.calls.artifact, 4);
  });

  test('a serial arriving while the cache is warmed waits for the same fetch instead of starting another', async () => {
    const { source, materialiser } = await setUp();
    const [warmed, first] = await Promise.all([materialiser.warm(source), materialiser.materialise('abcd1234')]);
    assert.equal(warmed.files + (first?.fetched ?? 0), 4, 'each shared file counted once');
    const sharedFetches =
      source.calls.artifact + [...source.calls.file].filter(([path]) => path !== 'cmdline.txt').reduce((n, [, c]) => n + c, 0);
    assert.equal(sharedFetches, 4, 'each shared file fetched once');
  });

  test('an existing directory is left alone and muster is not asked', async () => {
    const { root, source, materialiser } = await setUp();
    mkdirSync(join(root, 'abcd1234'));
    writeFileSync(join(root, 'abcd1234', 'start4.elf'), 'hand-made');
    assert.equal(await materialiser.materialise('abcd1234'), null);
    assert.equal(source.calls.provision, 0);
    assert.equal(readFileSync(join(root, 'abcd1234', 'start4.elf'), 'utf8'), 'hand-made');
  });

  test('bytes that do not match the listing leave no directory and nothing in the cache', async () => {
    const { root, source, materialiser } = await setUp();
    source.tampered.set('fixup4.dat', Buffer.from('fixup5'));
    await assert.rejects(
      materialiser.materialise('abcd1234'),
      /fixup4\.dat: the server listed 6 bytes with sha256 [0-9a-f]{64} but sent 6 bytes/,
    );
    assert.deepEqual(readdirSync(root).sort(), ['.muster']);
    assert.deepEqual(readdirSync(join(root, '.muster', 'tmp')), []);
    assert.ok(!readdirSync(join(root, '.muster', 'sha256')).includes('fixup5'));
    source.tampered.clear();
    assert.equal((await materialiser.materialise('abcd1234'))?.files, 5, 'the next try works');
  });

  test('a cache entry of the wrong size is fetched again', async () => {
    const { root, source, materialiser } = await setUp();
    await materialiser.materialise('abcd1234');
    const cached = join(root, '.muster', 'sha256', readdirSync(join(root, '.muster', 'sha256'))[0]);
    rmSync(cached);
    writeFileSync(cached, 'x');
    const second = await materialiser.materialise('0000beef');
    assert.equal(second?.fetched, 1);
    assert.equal(source.calls.provision, 2);
  });

  test('a refused serial gets no directory', async () => {
    const { root, source, materialiser } = await setUp();
    source.refused.add('deadbeef');
    await assert.rejects(materialiser.materialise('deadbeef'), { code: 'boot_refused' });
    assert.deepEqual(readdirSync(root), ['.muster']);
  });

  test('paths from the server that could leave the directory are refused before anything is written', async () => {
    for (const path of ['../escape', '/etc/passwd', 'a//b', 'a/./b', '.muster/sha256/x', 'back\\slash', '', 'nul\u0000']) {
      assert.throws(() => checkTreePath(path), /not safe to write/, JSON.stringify(path));
    }
    assert.equal(checkTreePath('overlays/vc4-kms-v3d.dtbo'), 'overlays/vc4-kms-v3d.dtbo');
    const { root, materialiser } = await setUp({ ...piTree(), '../outside': { bytes: Buffer.from('x') } });
    await assert.rejects(materialiser.materialise('abcd1234'), /not safe to write/);
    assert.deepEqual(readdirSync(root), ['.muster']);
  });
});

function piTreeCmdline(serial: string): string {
  return `console=tty1 root=/dev/nfs nfsroot=10.0.0.1:/srv/nfs/${serial} hostname=pi-${serial}\n`;
}
