// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Liquid and iPXE spell their variables {{ x }} and ${x}
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderTemplate } from '../../packages/server/src/platform/templates/render.ts';
import { eventually, tftpGet, treeFiles } from '../boot/support.ts';
import { eachDatabase, enrollBody, type Harness, type Reply } from '../support/harness.ts';
import { repoRoot } from '../support/process.ts';

// What an operator might try in order to read the server's files through a template, and what it would leak.
const attempts = [
  "{% include 'package.json' %}",
  "{% render 'package.json' %}",
  "{% include '/etc/passwd' %}",
  "{% render '../../../../etc/shadow' %}",
  "{% layout 'muster-data/muster.db' %}x",
  "{% assign f = 'package.json' %}{% include f %}",
  "{%- include 'file:///etc/passwd' -%}",
  "{% liquid\ninclude 'package.json'\n%}",
];
const secrets = [readFileSync(join(repoRoot, 'package.json'), 'utf8').slice(0, 40), 'root:', repoRoot, 'file:', '/etc/'];

function leaks(text: string): string[] {
  return secrets.filter((secret) => text.includes(secret));
}

test('a template renders nothing of the file system, and its error names no path', async () => {
  for (const source of attempts) {
    await assert.rejects(renderTemplate('leak', source, {}), (error: Error) => {
      assert.deepEqual(leaks(error.message), [], error.message);
      assert.match(
        error.message,
        /^Template leak does not render: the (include|render|layout) tag is not available: templates have no files to read/,
      );
      return true;
    });
  }
});

eachDatabase(
  'templates cannot read the server files',
  (h) => {
    test('an operator cannot save a boot script that includes a file: 400, the script unchanged, /ipxe shows nothing of it', async () => {
      const operator = await h().userToken('operator');
      const before = await h().request('GET', '/api/v1/boot/scripts/registration');
      for (const source of attempts) {
        const put = await h().request('PUT', '/api/v1/boot/scripts/registration', {
          token: operator,
          body: { body: `#!ipxe\n${source}\n` },
        });
        assert.equal(put.status, 400, source);
        assert.equal(put.headers['content-type'], 'application/problem+json; charset=utf-8');
        assert.deepEqual(leaks(put.text), [], put.text);
      }
      assert.deepEqual((await h().request('GET', '/api/v1/boot/scripts/registration')).body, before.body);
      const answer = await h().request('GET', '/ipxe?mac=02:00:00:00:99:01', { token: null });
      assert.equal(answer.status, 200);
      assert.deepEqual(leaks(answer.text), [], answer.text);
    });

    test('a Pi tree whose .liquid file includes the database is refused, and TFTP serves nothing of it', async () => {
      const operator = await h().userToken('operator');
      for (const source of attempts) {
        const files = await treeFiles(h(), {
          'config.txt': 'arm_64bit=1\n',
          'leak.txt.liquid': `${source}{% include 'muster-data/muster.db-wal' %}`,
        });
        const put = await h().request('PUT', '/api/v1/pi/trees/leaky', { token: operator, body: { files, serial_pattern: 'deadbeef' } });
        assert.equal(put.status, 400, source);
        assert.deepEqual(leaks(put.text), [], put.text);
      }
      assert.equal((await h().request('GET', '/api/v1/pi/trees/leaky')).status, 404);
      const fetched = await tftpGet(h().muster.tftpAddress?.port as number, 'deadbeef/leak.txt');
      assert.notEqual(fetched.code, 0);
      assert.equal(fetched.data.length, 0);
    });
  },
  { env: { MUSTER_TFTP_LISTEN: '127.0.0.1:0' } },
);

/** An operator's registration script that loops as long as the sandbox lets it, writing nothing. */
const hostileScript = '#!ipxe\n{% for a in (1..100000) %}{% for b in (1..100000) %}{% assign x = b | plus: 1 %}{% endfor %}{% endfor %}\n';
const mac = (n: number) => `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
// Long enough that two renders are seen running on a loaded machine, short enough to keep the suite quick.
const renderTimeout = 1500;

/** Sends the request and notes in `done` when its answer came. */
function tracked(done: string[], name: string, reply: Promise<Reply>): Promise<Reply> {
  return reply.then((answer) => {
    done.push(name);
    return answer;
  });
}

const ipxeFrom = (h: Harness, n: number, source: string) => h.request('GET', `/ipxe?mac=${mac(n)}`, { token: null, remoteAddress: source });

const problemOf = (reply: Reply) => ({ status: reply.status, code: reply.body?.code, retryAfter: reply.headers['retry-after'] });

eachDatabase(
  'templates render off the event loop, bounded in time, queue and per source',
  (h) => {
    let operator: string;
    let macs = 0;
    const setRegistration = async (body: string) => {
      operator ??= await h().userToken('operator');
      const put = await h().request('PUT', '/api/v1/boot/scripts/registration', { token: operator, body: { body } });
      assert.equal(put.status, 200, put.text);
    };

    test('while 50 hostile renders run, /healthz, /boot.ipxe and enroll answer before the first hostile render ends', async () => {
      await setRegistration(hostileScript);
      const done: string[] = [];
      const probe = tracked(done, 'probe', ipxeFrom(h(), ++macs, '10.1.0.1'));
      // Long enough for the probe to be rendering; on the event loop, this timer waits for its render to end.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const sources = ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5'];
      const hostile = Array.from({ length: 49 }, (_, i) => tracked(done, 'hostile', ipxeFrom(h(), ++macs, sources[(i + 1) % 5])));
      const healthz = tracked(done, 'healthz', h().request('GET', '/healthz', { token: null }));
      const boot = tracked(done, 'boot.ipxe', h().request('GET', '/boot.ipxe', { token: null, remoteAddress: '10.2.0.1' }));
      const enroll = tracked(
        done,
        'enroll',
        h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(9001), remoteAddress: '10.2.0.2' }),
      );
      const others = await Promise.all([healthz, boot, enroll]);
      const stillPending = 50 - done.filter((name) => name === 'probe' || name === 'hostile').length;
      const answers = [await probe, ...(await Promise.all(hostile))];
      assert.deepEqual(
        others.map((reply) => reply.status),
        [200, 200, 201],
      );
      for (const other of ['healthz', 'boot.ipxe', 'enroll'])
        assert.ok(
          done.indexOf(other) < done.indexOf('probe'),
          `${other} answered before the first hostile render ended: ${done.join(' ')}`,
        );
      assert.ok(stillPending > 0, 'hostile renders were still running when the other doors had answered');
      assert.deepEqual(problemOf(answers[0]), { status: 503, code: 'render_timeout', retryAfter: undefined });
      const byCode: Record<string, number> = {};
      for (const answer of answers) byCode[answer.body.code] = (byCode[answer.body.code] ?? 0) + 1;
      // Two answers in flight per source: of each source's ten, eight are refused before they cost anything.
      assert.equal(byCode.rate_limited, 40, JSON.stringify(byCode));
      assert.equal((byCode.render_timeout ?? 0) + (byCode.render_busy ?? 0), 10, JSON.stringify(byCode));
    });

    test('a render past the time limit is stopped with render_timeout (503), and the next render is served', async () => {
      await setRegistration(hostileScript);
      const slow = await ipxeFrom(h(), ++macs, '10.3.0.1');
      assert.equal(slow.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.deepEqual(
        { ...slow.body, request_id: undefined },
        {
          type: 'https://muster.dev/problems/render_timeout',
          title: 'A template did not render within the time limit',
          status: 503,
          code: 'render_timeout',
          detail: `Template registration did not finish rendering within ${renderTimeout} ms (the render time limit)`,
          instance: '/ipxe',
          errors: [],
          request_id: undefined,
        },
      );
      await setRegistration('#!ipxe\necho registering {{ machine.mac }}\n');
      const next = await ipxeFrom(h(), ++macs, '10.3.0.1');
      assert.deepEqual([next.status, next.text], [200, `#!ipxe\necho registering ${mac(macs)}\n`]);
    });

    test('past the render queue a render is refused with 503 render_busy and Retry-After', async () => {
      await setRegistration(hostileScript);
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => ipxeFrom(h(), ++macs, `10.4.0.${i + 1}`)));
      const refused = answers.filter((answer) => answer.body.code === 'render_busy');
      assert.ok(refused.length >= 12 - 2 - 4, `two threads and four places in the queue: ${answers.map((a) => a.body.code)}`);
      for (const answer of refused) assert.deepEqual(problemOf(answer), { status: 503, code: 'render_busy', retryAfter: '1' });
      for (const answer of answers.filter((a) => a.body.code !== 'render_busy'))
        assert.deepEqual(problemOf(answer), { status: 503, code: 'render_timeout', retryAfter: undefined });
    });

    // Six addresses of one /64: one source.
    test('one source waits on at most two renders; its others are refused with 429 and Retry-After before they end', async () => {
      await setRegistration(hostileScript);
      const done: string[] = [];
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => tracked(done, String(i), ipxeFrom(h(), ++macs, `2001:db8:5:5::${i + 1}`))),
      );
      const problems = answers.map(problemOf);
      assert.deepEqual(
        problems.filter((p) => p.code === 'rate_limited'),
        Array(4).fill({ status: 429, code: 'rate_limited', retryAfter: '1' }),
      );
      assert.deepEqual(
        problems.filter((p) => p.code !== 'rate_limited'),
        Array(2).fill({ status: 503, code: 'render_timeout', retryAfter: undefined }),
      );
      const rendered = answers.flatMap((a, i) => (a.status === 503 ? [String(i)] : []));
      assert.deepEqual(done.slice(4).sort(), rendered.sort(), 'the refused answers came first');
    });

    test('a discovery whose host name template loops holds no transaction open: a write meanwhile is not held up', async () => {
      await setRegistration('#!ipxe\necho registering\n');
      await h().request('POST', '/api/v1/fleets', { body: { name: 'slow' } });
      const slowName = '{% for a in (1..100000) %}{% for b in (1..100000) %}{% assign x = b %}{% endfor %}{% endfor %}x';
      assert.equal((await h().request('PUT', '/api/v1/profiles/slow-name', { body: { spec: { hostname: slowName } } })).status, 200);
      const rule = { door: 'ipxe', mac_prefix: '02:00:5e', action: 'discover', fleet: 'slow', profile: 'slow-name', priority: 1 };
      assert.equal((await h().request('PUT', '/api/v1/rules/slow-name', { body: rule })).status, 200);
      const discovery = h().request('GET', '/ipxe?mac=02:00:5e:00:00:01', { token: null, remoteAddress: '10.6.0.1' });
      await new Promise((resolve) => setTimeout(resolve, 50));
      // On SQLite a write waits for the transaction open before it: had the render held one open, the write
      // would be answered only once the machine was in the database.
      const write = await h().request('POST', '/api/v1/fleets', { body: { name: 'meanwhile' } });
      const meanwhile = await h().request('GET', '/api/v1/machines/mac:02:00:5e:00:00:01');
      assert.deepEqual([write.status, meanwhile.status], [201, 404], 'the write was answered while the host name rendered');
      assert.equal((await discovery).status, 200);
      const machine = (await h().request('GET', '/api/v1/machines/mac:02:00:5e:00:00:01')).body;
      assert.deepEqual([machine.hostname, machine.fleet_seq, machine.profile], ['slow-1', 1, 'slow-name']);
      const events = (await h().request('GET', `/api/v1/machines/${machine.id}/events`)).body.items;
      const discovered = events.find((event: { type: string }) => event.type === 'machine.discovered');
      assert.equal(
        discovered.data.hostname_error,
        `Template hostname did not finish rendering within ${renderTimeout} ms (the render time limit)`,
      );
    });

    test('an enrollment whose rule gives a looping host name template holds no transaction open either', async () => {
      await h().request('POST', '/api/v1/fleets', { body: { name: 'slow-enroll' } });
      const rule = {
        door: 'enroll',
        serial_pattern: 'SLOWNAME-*',
        action: 'discover',
        fleet: 'slow-enroll',
        profile: 'slow-name',
        priority: 1,
      };
      assert.equal((await h().request('PUT', '/api/v1/rules/slow-enroll', { body: rule })).status, 200);
      const enrollment = h().request('POST', '/api/v1/enroll', {
        token: null,
        remoteAddress: '10.6.0.2',
        body: { service_tag: 'SLOWNAME-1', mac_address: '02:00:5e:00:01:01' },
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const write = await h().request('POST', '/api/v1/fleets', { body: { name: 'meanwhile-2' } });
      const meanwhile = await h().request('GET', '/api/v1/machines/serial:SLOWNAME-1');
      assert.deepEqual([write.status, meanwhile.status], [201, 404], 'the write was answered while the host name rendered');
      assert.equal((await enrollment).status, 201);
      const machine = (await h().request('GET', '/api/v1/machines/serial:SLOWNAME-1')).body;
      assert.deepEqual([machine.hostname, machine.fleet_seq, machine.profile], ['slow-enroll-1', 1, 'slow-name']);
    });

    test('over TFTP, a Pi file past the time limit is an error packet, the pool serves on, and a third file at once is refused', async () => {
      const operator = await h().userToken('operator');
      const files = await treeFiles(h(), {
        'config.txt': 'arm_64bit=1\n',
        'slow.txt.liquid': '{% for a in (1..100000) %}{% for b in (1..100000) %}{% assign x = b %}{% endfor %}{% endfor %}',
        'fast.txt.liquid': 'serial={{ serial }}\n',
      });
      const put = await h().request('PUT', '/api/v1/pi/trees/slow', { token: operator, body: { files, serial_pattern: 'cafe*' } });
      assert.equal(put.status, 200, put.text);
      const port = h().muster.tftpAddress?.port as number;
      const done: string[] = [];
      const fetch = (name: string, path: string) =>
        tftpGet(port, path).then((fetched) => {
          done.push(name);
          return fetched;
        });
      const slow = [fetch('slow1', 'cafe0001/slow.txt'), fetch('slow2', 'cafe0001/slow.txt')];
      await eventually(
        async () => /muster_template_renders_pending\{state="running"\} 2\n/.test((await h().request('GET', '/metrics')).text),
        'two renders running',
      );
      const fetched = await Promise.all([...slow, fetch('third', 'cafe0001/fast.txt')]);
      assert.deepEqual(
        fetched.map((f) => [f.code !== 0, f.data.length]),
        [
          [true, 0],
          [true, 0],
          [true, 0],
        ],
      );
      assert.equal(done[0], 'third', `the third file was refused at once: ${done}`);
      const fast = await tftpGet(port, 'cafe0001/fast.txt');
      assert.deepEqual([fast.code, fast.data.toString()], [0, 'serial=cafe0001\n']);
    });
  },
  {
    env: {
      MUSTER_TFTP_LISTEN: '127.0.0.1:0',
      MUSTER_RENDER_TIMEOUT: `${renderTimeout}ms`,
      MUSTER_RENDER_THREADS: '2',
      MUSTER_RENDER_QUEUE: '4',
      MUSTER_BOOT_RENDERS_PER_SOURCE: '2',
      // No line: a source's third request is refused at once, so that the counts below are exact.
      MUSTER_BOOT_RENDERS_WAITING: '0',
    },
  },
);
