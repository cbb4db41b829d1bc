import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { version } from '../../packages/server/src/app.ts';
import { eventually, tftpGet, treeFiles } from '../boot/support.ts';
import { eachDatabase, enrollBody } from '../support/harness.ts';
import { testTool } from '../tools/list.ts';

/** Prometheus's own linter on an exposition: its exit code and what it said. */
function promtoolCheck(exposition: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(testTool('promtool').path, ['check', 'metrics'], { timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}`.trim() }),
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(exposition);
  });
}

eachDatabase('/metrics', (h) => {
  test('promtool check metrics accepts the exposition, after requests, enrollments and a failure', async () => {
    for (let n = 1; n <= 3; n++) await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(n) });
    await h().request('GET', '/api/v1/machines/no-such-machine');
    const reply = await h().request('GET', '/metrics', { token: null });
    assert.equal(reply.status, 200);
    assert.deepEqual(await promtoolCheck(reply.text), { code: 0, output: '' });
  });

  test('process_* and nodejs_* carry their standard names, with muster_build_info beside them', async () => {
    const reply = await h().request('GET', '/metrics', { token: null });
    const types = new Map(
      reply.text
        .split('\n')
        .filter((line) => line.startsWith('# TYPE '))
        .map((line) => line.slice(7).split(' ') as [string, string]),
    );
    const expected = {
      process_cpu_seconds_total: 'counter',
      process_resident_memory_bytes: 'gauge',
      process_open_fds: 'gauge',
      nodejs_heap_size_used_bytes: 'gauge',
      nodejs_eventloop_lag_seconds: 'gauge',
      nodejs_active_handles: 'gauge',
      nodejs_gc_duration_seconds: 'histogram',
      muster_build_info: 'gauge',
      muster_tftp_transfers_total: 'counter',
      muster_tftp_sent_bytes_total: 'counter',
      muster_boot_requests_total: 'counter',
      muster_artifact_sent_bytes_total: 'counter',
    };
    assert.deepEqual(Object.fromEntries(Object.keys(expected).map((name) => [name, types.get(name)])), expected);
    assert.deepEqual(
      [...types.keys()].filter((name) => name.includes('muster_process') || (types.get(name) !== 'counter' && name.endsWith('_total'))),
      [],
    );
    assert.ok(reply.text.split('\n').includes(`muster_build_info{version="${version}",node="${process.versions.node}"} 1`));
  });
});

/** The value of one series in an exposition, 0 when absent. */
function sample(exposition: string, series: string): number {
  const line = exposition.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

eachDatabase(
  '/metrics counts what the boot doors serve',
  (h) => {
    test('TFTP transfers and bytes, boot requests by door and outcome, artifact bytes over HTTP', async () => {
      const scrape = async () => (await h().request('GET', '/metrics', { token: null })).text;
      const before = await scrape();
      const kernel = Buffer.alloc(100_000, 7);
      const files = await treeFiles(h(), { 'kernel8.img': kernel, 'config.txt': 'arm_64bit=1\n' });
      assert.equal((await h().request('PUT', '/api/v1/pi/trees/lab', { body: { files, serial_pattern: '*' } })).status, 200);
      const port = h().muster.tftpAddress?.port as number;
      assert.equal((await tftpGet(port, 'abcd0001/kernel8.img')).code, 0);
      assert.notEqual((await tftpGet(port, 'abcd0001/missing.txt')).code, 0);
      const ipxe = await h().request('GET', '/ipxe?mac=02:00:00:00:00:01', { token: null });
      assert.equal(ipxe.status, 200);
      const content = await h().request('GET', `/api/v1/artifacts/${files[0].sha256}/content`);
      assert.equal(content.status, 200);
      const after = await eventually(async () => {
        const text = await scrape();
        return (
          sample(text, 'muster_tftp_transfers_total{outcome="complete"}') >
            sample(before, 'muster_tftp_transfers_total{outcome="complete"}') && text
        );
      }, 'the TFTP transfer is counted');
      const grew = (series: string) => sample(after, series) - sample(before, series);
      assert.deepEqual(
        {
          tftpOk: grew('muster_tftp_transfers_total{outcome="complete"}'),
          tftpBytes: grew('muster_tftp_sent_bytes_total'),
          piOk: grew('muster_boot_requests_total{door="pi",outcome="ok"}'),
          piMissing: grew('muster_boot_requests_total{door="pi",outcome="not_found"}'),
          ipxeOk: grew('muster_boot_requests_total{door="ipxe",outcome="ok"}'),
          artifactBytes: grew('muster_artifact_sent_bytes_total'),
        },
        { tftpOk: 1, tftpBytes: 100_000, piOk: 1, piMissing: 1, ipxeOk: 1, artifactBytes: 100_000 },
      );
    });
  },
  { env: { MUSTER_TFTP_LISTEN: '127.0.0.1:0' } },
);
