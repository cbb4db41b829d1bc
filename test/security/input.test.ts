import assert from 'node:assert/strict';
import { test } from 'node:test';
import { treeFiles } from '../boot/support.ts';
import { eachDatabase, type Harness, type Reply } from '../support/harness.ts';

const problemType = 'application/problem+json; charset=utf-8';

/** A 4xx problem+json with the given code whose errors point at `path` (when given). */
function refused(reply: Reply, status: number, code: string, path?: string): void {
  assert.equal(reply.status, status, reply.text);
  assert.equal(reply.headers['content-type'], problemType);
  assert.equal(reply.body.code, code, reply.text);
  if (path)
    assert.ok(
      reply.body.errors.some((e: { path: string }) => e.path === path),
      `${path} in ${reply.text}`,
    );
}

// Characters that make a name show as something else, or cut it short.
const hiddenCharacters = {
  NUL: '\u0000',
  'RIGHT-TO-LEFT OVERRIDE': '\u202e',
  'LEFT-TO-RIGHT ISOLATE': '\u2066',
  'ZERO WIDTH SPACE': '\u200b',
  ESC: '\u001b',
};

async function snapshot(h: () => Harness, url: string) {
  return (await h().request('GET', url)).body;
}

eachDatabase('input that used to get through', (h) => {
  test('a lone UTF-16 surrogate anywhere in a body is a 400; nothing is stored, retries stay 400, /events stays valid JSON', async () => {
    for (const payload of [
      '{"serial":"\\ud800LS1"}',
      '{"service_tag":"OK1","hardware":{"cpu":"\\udfff"}}',
      '{"service_tag":"OK2","hardware":{"\\ud83d":1}}',
    ]) {
      for (let attempt = 0; attempt < 2; attempt++) {
        refused(await h().request('POST', '/api/v1/enroll', { token: null, payload }), 400, 'validation_failed');
      }
    }
    assert.equal((await h().request('GET', '/api/v1/machines?total=true')).body.total, 0);
    const events = await h().request('GET', '/api/v1/events');
    assert.equal(events.status, 200);
    assert.ok(events.text.isWellFormed());
    assert.doesNotThrow(() => JSON.parse(events.text));
  });

  test("Fastify's own refusals are problem+json: a 600-character id (414) and a path that is not UTF-8 (400)", async () => {
    refused(await h().request('GET', `/api/v1/machines/${'a'.repeat(600)}`), 414, 'uri_too_long');
    refused(await h().request('GET', '/api/v1/machines/%ff%fe'), 400, 'bad_request');
    refused(await h().request('GET', '/ipxe/%c0%af', { token: null }), 400, 'bad_request');
  });

  test('a label key that fails its pattern is a 400 that changes nothing (it used to be dropped, wiping the labels)', async () => {
    const made = await h().request('POST', '/api/v1/machines', {
      body: { identifiers: [{ kind: 'serial', value: 'LABELS-1' }], labels: { rack: 'r1' } },
    });
    assert.equal(made.status, 201, made.text);
    const before = await snapshot(h, `/api/v1/machines/${made.body.id}`);
    for (const method of ['PUT', 'PATCH']) {
      refused(
        await h().request(method, `/api/v1/machines/${made.body.id}`, { body: { labels: { 'bad key!': 'x' } } }),
        400,
        'validation_failed',
        '/labels/bad key!',
      );
      refused(
        await h().request(method, `/api/v1/machines/${made.body.id}`, { body: { labels: { rack: 'r\u202e2' } } }),
        400,
        'validation_failed',
        '/labels/rack',
      );
    }
    assert.deepEqual(await snapshot(h, `/api/v1/machines/${made.body.id}`), before);
  });

  test('names shown to people or used in paths refuse control, bidirectional and invisible characters', async () => {
    const made = await h().request('POST', '/api/v1/machines', { body: { identifiers: [{ kind: 'serial', value: 'NAMES-1' }] } });
    const machine = `/api/v1/machines/${made.body.id}`;
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'edge' } })).status, 201);
    const files = await treeFiles(h(), { 'config.txt': 'arm_64bit=1\n' });
    const before = {
      machine: await snapshot(h, machine),
      fleet: await snapshot(h, '/api/v1/fleets/edge'),
      tokens: await snapshot(h, '/api/v1/tokens'),
      rules: await snapshot(h, '/api/v1/rules'),
      trees: await snapshot(h, '/api/v1/pi/trees'),
    };
    for (const c of Object.values(hiddenCharacters)) {
      const cases: [string, string, unknown, string][] = [
        ['PATCH', machine, { hostname: `web${c}01` }, '/hostname'],
        ['PATCH', machine, { description: `rack${c}12` }, '/description'],
        ['POST', `${machine}/transition`, { state: 'configured', reason: `checked${c}` }, '/reason'],
        ['PUT', '/api/v1/fleets/edge', { description: `edge${c}` }, '/description'],
        ['POST', '/api/v1/tokens', { name: `ci${c}`, role: 'viewer' }, '/name'],
        ['PUT', '/api/v1/rules/lab', { door: 'pi', serial_pattern: `ab${c}*`, action: 'discover' }, '/serial_pattern'],
        ['PUT', '/api/v1/pi/trees/lab', { files: [{ ...files[0], path: `config${c}.txt` }] }, '/files/0/path'],
      ];
      for (const [method, url, body, path] of cases) {
        refused(await h().request(method, url, { body }), 400, 'validation_failed', path);
      }
    }
    refused(await h().request('PATCH', machine, { body: { hostname: '{{ machine.id }}' } }), 400, 'validation_failed', '/hostname');
    assert.deepEqual(
      {
        machine: await snapshot(h, machine),
        fleet: await snapshot(h, '/api/v1/fleets/edge'),
        tokens: await snapshot(h, '/api/v1/tokens'),
        rules: await snapshot(h, '/api/v1/rules'),
        trees: await snapshot(h, '/api/v1/pi/trees'),
      },
      before,
    );
    // Descriptions may still span lines.
    const prose = await h().request('PATCH', machine, { body: { description: 'rack 12\n\tshelf 3' } });
    assert.equal(prose.status, 200, prose.text);
    assert.equal(prose.body.description, 'rack 12\n\tshelf 3');
  });
});
