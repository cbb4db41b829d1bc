import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { before, test } from 'node:test';
import { eachDatabase, type Harness, type Reply } from '../support/harness.ts';
import { assertProblem, eventsAfter, lastEventId } from './assertions.ts';

const maxBytes = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

function baseUrl(h: Harness): string {
  return `http://127.0.0.1:${(h.muster.app.server.address() as AddressInfo).port}`;
}

async function toReply(response: Response): Promise<Reply> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: response.status, headers: Object.fromEntries(response.headers), body, text };
}

interface UploadOptions {
  query?: string;
  token?: string | null;
  contentType?: string | null;
}

/** Uploads over a real socket, as the CLI and curl do. */
async function upload(h: Harness, data: Uint8Array, options: UploadOptions = {}): Promise<Reply> {
  const token = options.token === undefined ? h.admin : options.token;
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.contentType !== null) headers['content-type'] = options.contentType ?? 'application/octet-stream';
  const response = await fetch(`${baseUrl(h)}/api/v1/artifacts${options.query ?? ''}`, { method: 'POST', headers, body: data });
  return toReply(response);
}

interface Download {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: Buffer;
}

async function download(h: Harness, sha: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET'): Promise<Download> {
  const response = await h.muster.app.inject({
    method,
    url: `/api/v1/artifacts/${sha}/content`,
    headers: { authorization: `Bearer ${h.admin}`, ...headers },
  });
  return { status: response.statusCode, headers: response.headers, body: response.rawPayload };
}

/** The headers that say what was sent, for comparing whole. */
function sent(d: Download) {
  const pick = ['content-length', 'content-range', 'content-type', 'etag', 'accept-ranges', 'cache-control'];
  return {
    status: d.status,
    headers: Object.fromEntries(pick.filter((k) => d.headers[k] !== undefined).map((k) => [k, String(d.headers[k])])),
  };
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/** Everything an artifact request may change: artifacts, names, files on disk and the event log. */
async function artifactState(h: Harness) {
  return {
    artifacts: (await h.request('GET', '/api/v1/artifacts?limit=500')).body.items,
    names: (await h.request('GET', '/api/v1/artifact-names?limit=500')).body.items,
    files: await filesUnder(h.config.artifactDir),
    lastEventId: await lastEventId(h),
  };
}

async function refusedWithoutChange(h: Harness, send: () => Promise<Reply>): Promise<Reply> {
  const before = await artifactState(h);
  const reply = await send();
  assert.ok(reply.status >= 400, `expected a refusal, got ${reply.status}: ${reply.text.slice(0, 300)}`);
  assert.deepEqual(await artifactState(h), before);
  return reply;
}

const publish = (h: Harness, name: string, sha: string, token?: string) =>
  h.request('PUT', `/api/v1/artifact-names/${encodeURIComponent(name)}`, { body: { sha256: sha }, token });

eachDatabase(
  'Content-addressed artifacts',
  (h) => {
    const kernel = randomBytes(300 * 1024);
    const kernelSha = sha256(kernel);
    const etag = `"${kernelSha}"`;

    before(async () => {
      const reply = await upload(h(), kernel, { query: '?name=bzImage' });
      assert.equal(reply.status, 201, reply.text);
    });

    test('an upload answers 201 with the artifact, stores one file under sha256/<ab>/<sha256>, and records artifact.added', async () => {
      const data = randomBytes(70_000);
      const sha = sha256(data);
      const since = await lastEventId(h());
      const reply = await upload(h(), data, { query: '?name=initrd.img' });
      assert.equal(reply.status, 201, reply.text);
      assert.deepEqual(
        { ...reply.body, created_at: typeof reply.body.created_at },
        { sha256: sha, size: data.length, name: 'initrd.img', names: [], created_by: 'user:admin', created_at: 'string' },
      );
      assert.deepEqual(await readFile(join(h().config.artifactDir, 'sha256', sha.slice(0, 2), sha)), data);
      assert.deepEqual(await filesUnder(join(h().config.artifactDir, 'incoming')), []);
      assert.deepEqual(
        (await eventsAfter(h(), since)).map((e) => ({
          type: e.type,
          actor: (e as { actor?: string }).actor,
          data: (e as { data?: unknown }).data,
        })),
        [{ type: 'artifact.added', actor: 'user:admin', data: { sha256: sha, size: data.length, name: 'initrd.img' } }],
      );
      assert.deepEqual((await h().request('GET', `/api/v1/artifacts/${sha}`)).body, reply.body);
    });

    test('the same content again answers 200 with the first artifact and changes nothing', async () => {
      const before = await artifactState(h());
      const again = await upload(h(), kernel, { query: '?name=other-name' });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.sha256, kernelSha);
      assert.equal(again.body.name, 'bzImage');
      assert.deepEqual(await artifactState(h()), before);
    });

    test('eight concurrent uploads of new content give one row, one file and one event: one 201 and seven 200', async () => {
      const data = randomBytes(2 * 1024 * 256);
      const sha = sha256(data);
      const since = await lastEventId(h());
      const replies = await Promise.all(Array.from({ length: 8 }, () => upload(h(), data)));
      assert.deepEqual(replies.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
      assert.ok(replies.every((r) => r.body.sha256 === sha));
      assert.deepEqual(
        (await filesUnder(h().config.artifactDir)).filter((f) => f.includes(sha)),
        [join('sha256', sha.slice(0, 2), sha)],
      );
      assert.deepEqual(await filesUnder(join(h().config.artifactDir, 'incoming')), []);
      assert.deepEqual(
        (await eventsAfter(h(), since)).map((e) => e.type),
        ['artifact.added'],
      );
      const listed = (await h().request('GET', '/api/v1/artifacts?limit=500')).body.items.filter(
        (a: { sha256: string }) => a.sha256 === sha,
      );
      assert.equal(listed.length, 1);
    });

    test('a server without the file of a listed artifact answers 503; uploading the content again restores the file', async () => {
      const data = randomBytes(3000);
      const sha = (await upload(h(), data)).body.sha256;
      await rm(join(h().config.artifactDir, 'sha256', sha.slice(0, 2), sha));
      const missing = await h().request('GET', `/api/v1/artifacts/${sha}/content`);
      assertProblem(missing, 'unavailable', `/api/v1/artifacts/${sha}/content`);
      assert.match(missing.body.detail, /missing on this server; replicas must share the artifact directory/);
      const since = await lastEventId(h());
      assert.equal((await upload(h(), data)).status, 200);
      assert.deepEqual(await eventsAfter(h(), since), []);
      const restored = await download(h(), sha);
      assert.deepEqual([restored.status, restored.body.equals(data)], [200, true]);
    });

    test('an empty file is an artifact too', async () => {
      const reply = await upload(h(), new Uint8Array(0), { query: '?name=empty' });
      assert.ok([200, 201].includes(reply.status), reply.text);
      assert.equal(reply.body.sha256, sha256(new Uint8Array(0)));
      const got = await download(h(), reply.body.sha256);
      assert.deepEqual(
        { ...sent(got), body: got.body.length },
        {
          status: 200,
          headers: {
            'content-length': '0',
            'content-type': 'application/octet-stream',
            etag: `"${reply.body.sha256}"`,
            'accept-ranges': 'bytes',
            'cache-control': 'private, max-age=31536000, immutable',
          },
          body: 0,
        },
      );
      assert.equal((await download(h(), reply.body.sha256, { range: 'bytes=0-' })).status, 416);
    });

    test('a download sends the whole file with its ETag, length, type, cache policy and file name', async () => {
      const got = await download(h(), kernelSha);
      assert.deepEqual(sent(got), {
        status: 200,
        headers: {
          'content-length': String(kernel.length),
          'content-type': 'application/octet-stream',
          etag,
          'accept-ranges': 'bytes',
          'cache-control': 'private, max-age=31536000, immutable',
        },
      });
      assert.equal(got.headers['content-disposition'], `attachment; filename="bzImage"; filename*=UTF-8''bzImage`);
      assert.ok(got.body.equals(kernel));
    });

    test('each form of a single byte range is a 206 with its Content-Range and bytes', async () => {
      const size = kernel.length;
      const cases: [string, number, number][] = [
        ['bytes=0-9', 0, 9],
        ['bytes=1000-', 1000, size - 1],
        ['bytes=-100', size - 100, size - 1],
        ['bytes=5-5', 5, 5],
        [`bytes=${size - 10}-${size + 5000}`, size - 10, size - 1],
        ['bytes=-999999999', 0, size - 1],
      ];
      for (const [range, start, end] of cases) {
        const got = await download(h(), kernelSha, { range });
        assert.deepEqual(
          sent(got),
          {
            status: 206,
            headers: {
              'content-length': String(end - start + 1),
              'content-range': `bytes ${start}-${end}/${size}`,
              'content-type': 'application/octet-stream',
              etag,
              'accept-ranges': 'bytes',
              'cache-control': 'private, max-age=31536000, immutable',
            },
          },
          range,
        );
        assert.ok(got.body.equals(kernel.subarray(start, end + 1)), range);
      }
    });

    test('a range past the end is a 416 that gives the size; -0 is one too', async () => {
      for (const range of [`bytes=${kernel.length}-`, `bytes=${kernel.length + 10}-${kernel.length + 20}`, 'bytes=-0']) {
        const got = await download(h(), kernelSha, { range });
        assert.equal(got.status, 416, range);
        assert.equal(got.headers['content-range'], `bytes */${kernel.length}`, range);
        assert.equal(got.body.length, 0);
      }
    });

    test('several ranges, other units and malformed ranges get the whole file', async () => {
      for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=9-1', 'bytes=x-y']) {
        const got = await download(h(), kernelSha, { range });
        assert.equal(got.status, 200, range);
        assert.ok(got.body.equals(kernel), range);
      }
    });

    test('If-None-Match with the ETag is a 304 without a body; another tag gets the file', async () => {
      for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
        const got = await download(h(), kernelSha, { 'if-none-match': ifNoneMatch });
        assert.deepEqual(
          { status: got.status, etag: got.headers.etag, cache: got.headers['cache-control'], body: got.body.length },
          { status: 304, etag, cache: 'private, max-age=31536000, immutable', body: 0 },
          ifNoneMatch,
        );
      }
      const other = await download(h(), kernelSha, { 'if-none-match': '"something-else"' });
      assert.equal(other.status, 200);
      assert.ok(other.body.equals(kernel));
    });

    test('If-Range with the ETag keeps the range; with another validator the whole file is sent', async () => {
      const same = await download(h(), kernelSha, { range: 'bytes=0-3', 'if-range': etag });
      assert.deepEqual([same.status, same.body], [206, kernel.subarray(0, 4)]);
      for (const ifRange of ['"stale"', `W/${etag}`, 'Wed, 21 Oct 2015 07:28:00 GMT']) {
        const stale = await download(h(), kernelSha, { range: 'bytes=0-3', 'if-range': ifRange });
        assert.equal(stale.status, 200, ifRange);
        assert.ok(stale.body.equals(kernel), ifRange);
      }
    });

    test('HEAD sends the headers of GET and no body, for whole files and ranges', async () => {
      const whole = await download(h(), kernelSha, {}, 'HEAD');
      assert.deepEqual(sent(whole), sent(await download(h(), kernelSha)));
      assert.equal(whole.body.length, 0);
      const range = await download(h(), kernelSha, { range: 'bytes=10-19' }, 'HEAD');
      assert.deepEqual(sent(range), sent(await download(h(), kernelSha, { range: 'bytes=10-19' })));
      assert.equal(range.body.length, 0);
    });

    test('downloading an unknown artifact is a 404, a malformed digest a 400', async () => {
      const missing = '0'.repeat(64);
      assertProblem(await h().request('GET', `/api/v1/artifacts/${missing}/content`), 'not_found');
      assertProblem(await h().request('GET', `/api/v1/artifacts/${missing}`), 'not_found');
      assert.deepEqual(assertProblem(await h().request('GET', '/api/v1/artifacts/abc/content'), 'validation_failed'), ['/sha256']);
      assert.deepEqual(assertProblem(await h().request('GET', `/api/v1/artifacts/${'A'.repeat(64)}`), 'validation_failed'), ['/sha256']);
    });

    test('publishing names an artifact; the same again changes nothing; re-pointing moves the name', async () => {
      const other = randomBytes(5000);
      const otherSha = (await upload(h(), other, { query: '?name=ipxe-new.efi' })).body.sha256;
      const since = await lastEventId(h());
      const first = await publish(h(), 'ipxe.efi', kernelSha);
      assert.equal(first.status, 201, first.text);
      assert.deepEqual(
        { ...first.body, updated_at: typeof first.body.updated_at },
        { name: 'ipxe.efi', sha256: kernelSha, size: kernel.length, updated_at: 'string' },
      );
      assert.equal((await publish(h(), 'ipxe.efi', kernelSha)).status, 200);
      const moved = await publish(h(), 'ipxe.efi', otherSha);
      assert.deepEqual([moved.status, moved.body.sha256, moved.body.size], [200, otherSha, other.length]);
      assert.deepEqual(
        (await eventsAfter(h(), since)).map((e) => [e.type, (e as { data?: unknown }).data]),
        [
          ['artifact.published', { name: 'ipxe.efi', sha256: kernelSha, previous: null }],
          ['artifact.published', { name: 'ipxe.efi', sha256: otherSha, previous: kernelSha }],
        ],
      );
      assert.deepEqual((await h().request('GET', `/api/v1/artifacts/${otherSha}`)).body.names, ['ipxe.efi']);
      assert.deepEqual((await h().request('GET', `/api/v1/artifacts/${kernelSha}`)).body.names, []);
      assert.deepEqual((await h().request('GET', '/api/v1/artifact-names/ipxe.efi')).body, moved.body);

      const unpublished = await h().request('DELETE', '/api/v1/artifact-names/ipxe.efi');
      assert.equal(unpublished.status, 204);
      assertProblem(await h().request('GET', '/api/v1/artifact-names/ipxe.efi'), 'not_found');
      assertProblem(await h().request('DELETE', '/api/v1/artifact-names/ipxe.efi'), 'not_found');
      assert.deepEqual((await eventsAfter(h(), since)).at(-1)?.type, 'artifact.unpublished');
      assert.equal((await download(h(), otherSha)).status, 200, 'the artifact stays');
    });

    test('names are relative paths: registration/bzImage is published with its slash encoded as %2F', async () => {
      const reply = await publish(h(), 'registration/bzImage', kernelSha);
      assert.equal(reply.status, 201, reply.text);
      assert.equal(reply.body.name, 'registration/bzImage');
      const names = (await h().request('GET', '/api/v1/artifact-names?limit=500')).body.items.map((n: { name: string }) => n.name);
      assert.ok(names.includes('registration/bzImage'));
      assert.equal((await h().muster.artifacts.byName('registration/bzImage'))?.sha256, kernelSha);
      assert.equal(await h().muster.artifacts.byName('registration/nothing'), null);
      assert.equal((await h().request('DELETE', '/api/v1/artifact-names/registration%2FbzImage')).status, 204);
    });

    test('bad names are refused and publish nothing', async () => {
      const bad = [
        '../etc/passwd',
        'a/../b',
        '/abs',
        'a//b',
        'a/',
        './a',
        'a/.',
        'tab\there',
        'back\\slash',
        'nul\u0000',
        'x'.repeat(256),
        'é'.repeat(128),
      ];
      for (const name of bad) {
        const reply = await refusedWithoutChange(h(), () => publish(h(), name, kernelSha));
        assertProblem(reply, 'validation_failed');
      }
      const viaUpload = await refusedWithoutChange(h(), () => upload(h(), randomBytes(100), { query: '?publish=..%2Fx' }));
      assertProblem(viaUpload, 'validation_failed', '/api/v1/artifacts');
    });

    test('publishing an unknown artifact is a 404 and changes nothing', async () => {
      const reply = await refusedWithoutChange(h(), () => publish(h(), 'undionly.kpxe', 'f'.repeat(64)));
      assertProblem(reply, 'not_found');
    });

    test('a wrong expected sha256 is a 400 that keeps nothing; the right one is accepted', async () => {
      const data = randomBytes(10_000);
      const wrong = await refusedWithoutChange(h(), () => upload(h(), data, { query: `?sha256=${'a'.repeat(64)}` }));
      assertProblem(wrong, 'bad_request', '/api/v1/artifacts');
      assert.match(wrong.body.detail, new RegExp(sha256(data)));
      const malformed = await refusedWithoutChange(h(), () => upload(h(), data, { query: '?sha256=abc' }));
      assert.deepEqual(assertProblem(malformed, 'validation_failed'), ['/sha256']);
      const right = await upload(h(), data, { query: `?sha256=${sha256(data)}` });
      assert.equal(right.status, 201, right.text);
    });

    test('an upload over the size limit is a 413 that keeps nothing, with or without Content-Length', async () => {
      const big = randomBytes(maxBytes + 1);
      assertProblem(await refusedWithoutChange(h(), () => upload(h(), big)), 'payload_too_large', '/api/v1/artifacts');
      const chunked = await refusedWithoutChange(h(), async () => {
        const response = await h().muster.app.inject({
          method: 'POST',
          url: '/api/v1/artifacts',
          headers: { authorization: `Bearer ${h().admin}`, 'content-type': 'application/octet-stream' },
          payload: Readable.from([big.subarray(0, maxBytes), big.subarray(maxBytes)]),
        });
        return { status: response.statusCode, headers: response.headers as Reply['headers'], body: response.json(), text: response.body };
      });
      assertProblem(chunked, 'payload_too_large', '/api/v1/artifacts');
      assert.equal((await upload(h(), big.subarray(0, maxBytes))).status, 201, 'exactly the limit is allowed');
    });

    test('a body that is not application/octet-stream is a 415 and keeps nothing', async () => {
      for (const contentType of ['application/json', 'text/plain', 'multipart/form-data; boundary=x']) {
        const reply = await refusedWithoutChange(h(), () => upload(h(), Buffer.from('{"a":1}'), { contentType }));
        assertProblem(reply, 'unsupported_media_type', '/api/v1/artifacts');
        assert.match(reply.body.detail, /application\/octet-stream/);
      }
      assertProblem(await refusedWithoutChange(h(), () => upload(h(), new Uint8Array(0), { contentType: null })), 'unsupported_media_type');
    });

    test('an unknown query field is a 400 naming it', async () => {
      const reply = await refusedWithoutChange(h(), () => upload(h(), randomBytes(10), { query: '?bogus=1' }));
      assert.deepEqual(assertProblem(reply, 'validation_failed'), ['/bogus']);
    });

    test('an upload with ?publish= publishes the name in the same step', async () => {
      const data = randomBytes(4096);
      const reply = await upload(h(), data, { query: '?name=undionly.kpxe&publish=undionly.kpxe' });
      assert.equal(reply.status, 201, reply.text);
      assert.deepEqual(reply.body.names, ['undionly.kpxe']);
      assert.equal((await h().muster.artifacts.byName('undionly.kpxe'))?.sha256, sha256(data));
    });

    test('deleting is refused while a name or a Pi tree uses the artifact; afterwards it removes row and file', async () => {
      const data = randomBytes(2048);
      const sha = (await upload(h(), data)).body.sha256;
      await publish(h(), 'firmware/start4.elf', sha);
      const published = await refusedWithoutChange(h(), () => h().request('DELETE', `/api/v1/artifacts/${sha}`));
      assertProblem(published, 'conflict', `/api/v1/artifacts/${sha}`);
      assert.match(published.body.detail, /firmware\/start4\.elf/);
      await h().request('DELETE', `/api/v1/artifact-names/${encodeURIComponent('firmware/start4.elf')}`);

      const files = JSON.stringify([{ path: 'start4.elf', sha256: sha, size: data.length, template: false }]);
      const at = new Date().toISOString();
      await h().muster.db.kysely.insertInto('pi_trees').values({ name: 'pi4-test', files, created_at: at, updated_at: at }).execute();
      const inTree = await refusedWithoutChange(h(), () => h().request('DELETE', `/api/v1/artifacts/${sha}`));
      assertProblem(inTree, 'conflict');
      assert.match(inTree.body.detail, /pi4-test/);
      await h().muster.db.kysely.deleteFrom('pi_trees').where('name', '=', 'pi4-test').execute();

      const since = await lastEventId(h());
      assert.equal((await h().request('DELETE', `/api/v1/artifacts/${sha}`)).status, 204);
      assertProblem(await h().request('GET', `/api/v1/artifacts/${sha}`), 'not_found');
      assert.deepEqual(
        (await filesUnder(h().config.artifactDir)).filter((f) => f.includes(sha)),
        [],
      );
      assert.deepEqual(
        (await eventsAfter(h(), since)).map((e) => [e.type, (e as { data?: unknown }).data]),
        [['artifact.deleted', { sha256: sha, size: data.length, name: '' }]],
      );
      assertProblem(await h().request('DELETE', `/api/v1/artifacts/${sha}`), 'not_found');
      assert.equal((await upload(h(), data)).status, 201, 'the same content can come back');
    });

    test('lists page with a cursor, newest first, and count on request', async () => {
      const all = (await h().request('GET', '/api/v1/artifacts?limit=500&total=true')).body;
      assert.equal(all.total, all.items.length);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: Reply = await h().request('GET', `/api/v1/artifacts?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(page.status, 200);
        seen.push(...page.body.items.map((a: { sha256: string }) => a.sha256));
        cursor = page.body.next_cursor;
      } while (cursor);
      assert.deepEqual(
        seen,
        all.items.map((a: { sha256: string }) => a.sha256),
      );
      const times = all.items.map((a: { created_at: string }) => a.created_at);
      assert.deepEqual(times, [...times].sort().reverse());
      assert.deepEqual(assertProblem(await h().request('GET', '/api/v1/artifacts?cursor=bogus'), 'validation_failed'), ['/cursor']);
    });

    test('a viewer may list and download but not upload, publish or delete; no token is a 401', async () => {
      const viewer = await h().userToken('viewer');
      assert.equal((await h().request('GET', '/api/v1/artifacts', { token: viewer })).status, 200);
      assert.equal((await h().request('GET', '/api/v1/artifact-names', { token: viewer })).status, 200);
      const got = await h().muster.app.inject({
        method: 'GET',
        url: `/api/v1/artifacts/${kernelSha}/content`,
        headers: { authorization: `Bearer ${viewer}` },
      });
      assert.equal(got.statusCode, 200);
      assertProblem(await refusedWithoutChange(h(), () => upload(h(), randomBytes(10), { token: viewer })), 'forbidden');
      assertProblem(await refusedWithoutChange(h(), () => publish(h(), 'viewer.bin', kernelSha, viewer)), 'forbidden');
      assertProblem(
        await refusedWithoutChange(h(), () => h().request('DELETE', `/api/v1/artifacts/${kernelSha}`, { token: viewer })),
        'forbidden',
      );
      assertProblem(await refusedWithoutChange(h(), () => upload(h(), randomBytes(10), { token: null })), 'unauthenticated');
      assertProblem(await h().request('GET', `/api/v1/artifacts/${kernelSha}/content`, { token: null }), 'unauthenticated');
    });
  },
  { env: { MUSTER_ARTIFACT_MAX_BYTES: String(maxBytes) } },
);
