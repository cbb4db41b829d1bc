import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { before, test } from 'node:test';
import { eachDatabase } from '../support/harness.ts';
import { eventually, sha256, tftpGet, treeFiles } from './support.ts';

const kernel = Buffer.alloc(300_000, 7);
const firmware = Buffer.from('start4.elf firmware bytes '.repeat(4000));
const cmdline = 'console=serial0,115200 root=/dev/nfs muster.machine={{ machine.id }} serial={{ serial }} tree={{ tree }}';

eachDatabase(
  'Raspberry Pi netboot by serial',
  (h) => {
    let port: number;

    before(async () => {
      port = h().muster.tftpAddress?.port as number;
      const files = await treeFiles(h(), {
        'start4.elf': firmware,
        'config.txt': '[all]\narm_64bit=1\nkernel=kernel8.img\n',
        'kernel8.img': kernel,
        'bcm2711-rpi-4-b.dtb': 'dtb',
        'overlays/overlay_map.dtb': 'map',
        'cmdline.txt.liquid': cmdline,
      });
      const put = await h().request('PUT', '/api/v1/pi/trees/lab', { body: { files, serial_pattern: 'ab*' } });
      assert.equal(put.status, 200, put.text);
      const refuse = await h().request('PUT', '/api/v1/rules/quarantine', {
        body: { door: 'pi', serial_pattern: 'dead*', action: 'refuse' },
      });
      assert.equal(refuse.status, 200, refuse.text);
    });

    test('an unseen serial gets its whole tree on the first request, and becomes a discovered machine', async () => {
      const probe = await tftpGet(port, 'ab000001/start4.elf');
      assert.equal(probe.code, 0, probe.stderr);
      assert.deepEqual(probe.data, firmware);
      const machine = (await h().request('GET', '/api/v1/machines/serial:ab000001')).body;
      assert.equal(machine.state, 'discovered');
      assert.deepEqual(machine.identifiers, [{ kind: 'serial', value: 'ab000001' }]);
      for (const [path, expected] of [
        ['ab000001/config.txt', Buffer.from('[all]\narm_64bit=1\nkernel=kernel8.img\n')],
        ['ab000001/kernel8.img', kernel],
        ['ab000001//overlays/overlay_map.dtb', Buffer.from('map')],
      ] as const) {
        const got = await tftpGet(port, path);
        assert.equal(got.code, 0, `${path}: ${got.stderr}`);
        assert.deepEqual(got.data, expected, path);
      }
      const rendered = await tftpGet(port, 'ab000001/cmdline.txt');
      assert.equal(rendered.data.toString(), `console=serial0,115200 root=/dev/nfs muster.machine=${machine.id} serial=ab000001 tree=lab`);
    });

    test('a serial entered in upper case is the machine the Pi asks as, in lower case', async () => {
      const created = await h().request('POST', '/api/v1/machines', {
        body: { identifiers: [{ kind: 'serial', value: ' AB0000CD ' }], hostname: 'pi-upper' },
      });
      assert.equal(created.status, 201, created.text);
      assert.deepEqual(created.body.identifiers, [{ kind: 'serial', value: 'ab0000cd' }]);
      const got = await tftpGet(port, 'ab0000cd/cmdline.txt');
      assert.equal(got.code, 0, got.stderr);
      assert.match(got.data.toString(), new RegExp(`muster.machine=${created.body.id} serial=ab0000cd`));
      for (const ref of ['serial:AB0000CD', 'serial:ab0000cd'])
        assert.equal((await h().request('GET', `/api/v1/machines/${ref}`)).body.id, created.body.id, ref);
      const found = await h().request('GET', '/api/v1/machines?q=ab0000cd');
      assert.deepEqual(
        found.body.items.map((m: { id: string }) => m.id),
        [created.body.id],
        'one machine, not a second one discovered by TFTP',
      );
    });

    test('each Pi gets its own rendered cmdline.txt', async () => {
      const [one, two] = await Promise.all([tftpGet(port, 'ab000002/cmdline.txt'), tftpGet(port, 'ab000003/cmdline.txt')]);
      const idOf = async (serial: string) => (await h().request('GET', `/api/v1/machines/serial:${serial}`)).body.id;
      assert.match(one.data.toString(), new RegExp(`muster.machine=${await idOf('ab000002')} serial=ab000002`));
      assert.match(two.data.toString(), new RegExp(`muster.machine=${await idOf('ab000003')} serial=ab000003`));
    });

    test('the boot timeline groups a Pi’s requests into a session with files, bytes and errors', async () => {
      await tftpGet(port, 'ab000004/config.txt');
      await tftpGet(port, 'ab000004/kernel8.img');
      await tftpGet(port, 'ab000004/missing.dtbo');
      const sessions = await eventually(async () => {
        const reply = await h().request('GET', '/api/v1/machines/serial:ab000004/boot-sessions');
        return reply.body.items?.[0]?.requests === 3 ? reply.body.items : null;
      }, 'three recorded requests');
      assert.equal(sessions.length, 1);
      assert.equal(sessions[0].door, 'pi');
      assert.equal(sessions[0].errors, 1);
      assert.equal(sessions[0].bytes, kernel.length + 37);
      const detail = (await h().request('GET', `/api/v1/boot-sessions/${sessions[0].id}`)).body;
      assert.deepEqual(
        detail.timeline.map((r: { path: string; status: string; bytes: number }) => [r.path, r.status, r.bytes]),
        [
          ['ab000004/config.txt', 'ok', 37],
          ['ab000004/kernel8.img', 'ok', kernel.length],
          ['ab000004/missing.dtbo', 'not_found', 0],
        ],
      );
      const events = (await h().request('GET', '/api/v1/events?machine=serial:ab000004&type=boot.')).body.items;
      assert.equal(events.length, 3);
    });

    test('a serial that a rule refuses gets a TFTP error, no machine, and an event', async () => {
      const refused = await tftpGet(port, 'dead0001/start4.elf');
      assert.notEqual(refused.code, 0);
      assert.equal(refused.data.length, 0);
      assert.equal((await h().request('GET', '/api/v1/machines/serial:dead0001')).status, 404);
      const events = (await h().request('GET', '/api/v1/events?type=boot.refused')).body.items;
      assert.ok(
        events.some(
          (e: { data: { rule: string; identifiers: { value: string }[] } }) =>
            e.data.rule === 'quarantine' && e.data.identifiers[0].value === 'dead0001',
        ),
      );
    });

    test('a serial no rule matches gets file-not-found, and the attempt is an event', async () => {
      const unknown = await tftpGet(port, 'cc000001/start4.elf');
      assert.notEqual(unknown.code, 0);
      assert.equal((await h().request('GET', '/api/v1/machines/serial:cc000001')).status, 404);
      const events = (await h().request('GET', '/api/v1/events?type=boot.unmatched')).body.items;
      assert.ok(events.some((e: { data: { identifiers: { value: string }[] } }) => e.data.identifiers[0].value === 'cc000001'));
    });

    test('traversal through a serial directory gets an error and no content', async () => {
      for (const path of ['ab000001/../../etc/passwd', 'ab000001/..%2f..%2fetc/passwd', 'ab000001\\..\\..\\etc\\passwd']) {
        const got = await tftpGet(port, path);
        assert.notEqual(got.code, 0, path);
        assert.equal(got.data.length, 0, path);
      }
    });

    test('what a serial will get is shown without creating it', async () => {
      const plan = await h().request('GET', '/api/v1/pi/serials/ab00ffff/files');
      assert.equal(plan.status, 200, plan.text);
      assert.equal(plan.body.machine_id, null);
      assert.equal(plan.body.tree, 'lab');
      assert.equal(plan.body.rule, 'lab');
      const rendered = `console=serial0,115200 root=/dev/nfs muster.machine= serial=ab00ffff tree=lab`;
      const cmd = plan.body.files.find((f: { path: string }) => f.path === 'cmdline.txt');
      assert.deepEqual(cmd, { path: 'cmdline.txt', sha256: sha256(rendered), size: rendered.length, template: true });
      const file = await h().request('GET', '/api/v1/pi/serials/ab00ffff/files/cmdline.txt');
      assert.equal(file.text, rendered);
      assert.equal((await h().request('GET', '/api/v1/machines/serial:ab00ffff')).status, 404);
      assert.equal((await h().request('GET', '/api/v1/pi/serials/dead0002/files')).body.code, 'boot_refused');
    });

    test('provisioning a serial by hand creates it once and sets its tree; pi ls counts it', async () => {
      const first = await h().request('POST', '/api/v1/pi/provision', { body: { serial: 'EF000001', tree: 'lab' } });
      assert.equal(first.status, 201, first.text);
      assert.equal(first.body.machine.serial, 'ef000001');
      assert.equal(first.body.tree, 'lab');
      const again = await h().request('POST', '/api/v1/pi/provision', { body: { serial: 'ef000001' } });
      assert.equal(again.status, 200);
      assert.equal(again.body.machine.machine_id, first.body.machine.machine_id);
      const got = await tftpGet(port, 'ef000001/config.txt');
      assert.equal(got.code, 0, got.stderr);
      const list = (await h().request('GET', '/api/v1/pi/machines?total=true&limit=2')).body;
      assert.equal(list.items.length, 2);
      assert.ok(list.total >= 5);
      assert.ok(list.next_cursor);
    });

    test('a Pi provisioned by its whole 16-digit serial is the machine its bootloader asks as, by 8 digits', async () => {
      // A Pi 4's serial as /proc/cpuinfo shows it, and a Pi 5's, whose upper half varies: both bootloaders send the low 8.
      const ids: string[] = [];
      for (const [whole, prefix] of [
        ['10000000AB0A3201', 'ab0a3201'],
        ['0c8f7e5cab989ae1', 'ab989ae1'],
      ]) {
        const provisioned = await h().request('POST', '/api/v1/pi/provision', { body: { serial: whole, tree: 'lab' } });
        assert.equal(provisioned.status, 201, provisioned.text);
        const id = provisioned.body.machine.machine_id;
        ids.push(id);
        const got = await tftpGet(port, `${prefix}/cmdline.txt`);
        assert.equal(got.code, 0, got.stderr);
        assert.equal(got.data.toString(), `console=serial0,115200 root=/dev/nfs muster.machine=${id} serial=${prefix} tree=lab`);
        const found = await h().request('GET', `/api/v1/machines?q=${prefix}`);
        assert.deepEqual(
          found.body.items.map((m: { id: string; identifiers: unknown }) => [m.id, m.identifiers]),
          [[id, [{ kind: 'serial', value: prefix }]]],
          'one machine, not a second one discovered by TFTP',
        );
        assert.equal((await h().request('GET', `/api/v1/machines/serial:${prefix}`)).body.id, id);
        // pi show takes either form too.
        const shown = await h().request('GET', `/api/v1/pi/serials/${whole}/files`);
        assert.deepEqual([shown.body.serial, shown.body.machine_id], [prefix, id], whole);
        assert.deepEqual(
          { ...provisioned.body, machine: { ...provisioned.body.machine, machine_id: 'ID', created_at: 'T', last_seen_at: 'T' } },
          {
            created: true,
            tree: 'lab',
            machine: {
              serial: prefix,
              machine_id: 'ID',
              hostname: null,
              state: 'discovered',
              tree: 'lab',
              created_at: 'T',
              last_seen_at: 'T',
            },
          },
        );
      }
      // Outside the Pi doors a Pi 4's whole serial names the same machine; a Dell service tag stays as typed.
      assert.equal((await h().request('GET', '/api/v1/machines/serial:10000000ab0a3201')).body.id, ids[0]);
      const tagged = await h().request('POST', '/api/v1/machines', { body: { identifiers: [{ kind: 'serial', value: 'AZJN042' }] } });
      assert.deepEqual(tagged.body.identifiers, [{ kind: 'serial', value: 'AZJN042' }]);
    });

    test('PXE ROMs get iPXE binaries by their published names, filed under the machine iPXE then names', async () => {
      const binary = existsSync('/usr/lib/ipxe/undionly.kpxe') ? readFileSync('/usr/lib/ipxe/undionly.kpxe') : Buffer.alloc(70_000, 9);
      const [file] = await treeFiles(h(), { 'undionly.kpxe': binary });
      assert.equal(
        (await h().request('PUT', '/api/v1/artifact-names/undionly.kpxe', { body: { sha256: file.sha256 } })).status < 300,
        true,
      );
      const got = await tftpGet(port, 'undionly.kpxe');
      assert.equal(got.code, 0, got.stderr);
      assert.deepEqual(got.data, binary);
      assert.notEqual((await tftpGet(port, 'ipxe.efi')).code, 0);
      // The ROM's fetch comes from the address that then asks /ipxe: it lands in that machine's timeline.
      const mac = '52:54:00:aa:00:01';
      // The transfer is reported when its last ACK arrives, which may be a moment after curl exits: ask until filed.
      const paths = await eventually(async () => {
        await h().request('GET', `/ipxe?mac=${encodeURIComponent(mac)}`, { token: null });
        const [session] = (await h().request('GET', `/api/v1/machines/mac:${mac}/boot-sessions`)).body.items;
        const detail = (await h().request('GET', `/api/v1/boot-sessions/${session.id}`)).body;
        const all: string[] = detail.timeline.map((r: { door: string; path: string }) => `${r.door} ${r.path.split('?')[0]}`);
        return all.includes('tftp undionly.kpxe') ? all : null;
      }, 'the ROM fetch in the timeline');
      assert.equal(paths.at(-1), 'ipxe /ipxe');
    });

    test('bad input changes nothing', async () => {
      const before = (await h().request('GET', '/api/v1/pi/trees/lab')).body;
      const missing = await h().request('PUT', '/api/v1/pi/trees/lab', {
        body: { files: [{ path: 'x', sha256: 'a'.repeat(64), size: 1, template: false }] },
      });
      assert.equal(missing.status, 400);
      assert.equal(missing.body.errors[0].path, '/files/0/sha256');
      const [good] = await treeFiles(h(), { 'bad.liquid': '{% if %}' });
      const badTemplate = await h().request('PUT', '/api/v1/pi/trees/lab', { body: { files: [good] } });
      assert.equal(badTemplate.status, 400);
      const traversal = await h().request('PUT', '/api/v1/pi/trees/lab', { body: { files: [{ ...good, path: '../x', template: false }] } });
      assert.equal(traversal.status, 400);
      assert.deepEqual((await h().request('GET', '/api/v1/pi/trees/lab')).body, before);
      assert.equal((await h().request('POST', '/api/v1/pi/provision', { body: { serial: 'xyz' } })).status, 400);
      assert.equal((await h().request('POST', '/api/v1/pi/provision', { body: { serial: 'ab001234', tree: 'nope' } })).status, 404);
      assert.equal((await h().request('POST', '/api/v1/pi/provision', { body: { serial: 'cc001234' } })).status, 404);
      assert.equal((await h().request('GET', '/api/v1/machines/serial:cc001234')).status, 404);
      assert.equal((await h().request('PUT', '/api/v1/rules/x', { body: { action: 'explode' } })).status, 400);
      assert.equal((await h().request('PUT', '/api/v1/rules/x', { body: { action: 'discover', pi_tree: 'nope' } })).status, 400);
      assert.equal((await h().request('GET', '/api/v1/rules/x')).status, 404);
      assert.equal((await h().request('DELETE', '/api/v1/pi/trees/lab')).status, 409);
    });
  },
  { env: { MUSTER_TFTP_LISTEN: '127.0.0.1:0' } },
);
