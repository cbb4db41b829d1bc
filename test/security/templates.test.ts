// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Liquid and iPXE spell their variables {{ x }} and ${x}
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderTemplate } from '../../packages/server/src/platform/templates/render.ts';
import { tftpGet, treeFiles } from '../boot/support.ts';
import { eachDatabase } from '../support/harness.ts';
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
