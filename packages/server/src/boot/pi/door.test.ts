import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { MusterError } from '@muster/contract';
import { ArtifactService } from '../../modules/artifacts/service.ts';
import { PiService } from '../../modules/pi/service.ts';
import { RuleService } from '../../modules/rules/service.ts';
import { type Scratch, scratchDatabase } from '../../platform/db/scratch.ts';
import { BootDiscovery } from '../core/resolve.ts';
import { PiBoot, type PiFile } from './door.ts';

let s: Scratch;
const blobs = mkdtempSync(join(tmpdir(), 'muster-door-'));
let trees: PiService;
let door: PiBoot;
before(async () => {
  s = await scratchDatabase();
  const artifacts = new ArtifactService(s.tx, { dir: blobs, maxBytes: 1 << 20 });
  trees = new PiService(s.tx, artifacts);
  door = new PiBoot(s.tx, trees, (sha) => artifacts.blobPath(sha), new BootDiscovery(s.tx, new RuleService(s.tx)), {
    publicUrl: 'http://muster.test',
  });
  const add = async (name: string, content: string) =>
    (await artifacts.addStream('test', Readable.from([Buffer.from(content)]), { name })).artifact;
  const config = await add('config.txt', '[all]\narm_64bit=1\n');
  const cmdline = await add('cmdline.txt', 'serial={{ serial }} machine={{ machine.id }} tree={{ tree }} at={{ server.url }}');
  await trees.putTree('test', 'lab', {
    files: [
      { path: 'config.txt', sha256: config.sha256, size: config.size, template: false },
      { path: 'cmdline.txt', sha256: cmdline.sha256, size: cmdline.size, template: true },
    ],
    serial_pattern: 'ab*',
  });
});
after(async () => {
  await s.close();
  rmSync(blobs, { recursive: true, force: true });
});

const text = (file: PiFile | null) => (file && 'bytes' in file ? file.bytes.toString() : file ? readFileSync(file.blob, 'utf8') : null);

test('a booting Pi gets blobs as they are and templates rendered for its machine', async () => {
  const config = await door.bootFile('AB000001', 'config.txt', '10.0.0.1');
  assert.equal(text(config.file), '[all]\narm_64bit=1\n');
  const cmdline = await door.bootFile('ab000001', 'cmdline.txt', '10.0.0.1');
  assert.equal(cmdline.machineId, config.machineId, 'the serial in either case is one machine');
  assert.equal(text(cmdline.file), `serial=ab000001 machine=${cmdline.machineId} tree=lab at=http://muster.test`);
  assert.ok(cmdline.file && cmdline.file.entry.size === Buffer.byteLength(text(cmdline.file) ?? ''), 'the size is the rendered one');
  assert.equal((await door.bootFile('ab000001', 'missing.dtb', '10.0.0.1')).file, null);
});

test('what a serial would get is shown without creating it; by hand a serial is placed once', async () => {
  const shown = await door.serialFiles('ab0000ff');
  assert.deepEqual([shown.machine_id, shown.tree, shown.rule], [null, 'lab', 'lab']);
  assert.equal(
    (await trees.listPis({})).items.some((p) => p.serial === 'ab0000ff'),
    false,
  );
  const placed = await door.provision('test', 'CC000001', 'lab');
  assert.deepEqual([placed.created, placed.tree, placed.machine.serial], [true, 'lab', 'cc000001']);
  assert.equal((await door.provision('test', 'cc000001')).created, false);
  await assert.rejects(door.serialFiles('ee000001'), (e) => e instanceof MusterError && e.code === 'not_found');
});
