import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eachDatabase, enrollBody, type Harness, waitForJob } from '../support/harness.ts';
import { answered, assertProblem } from './assertions.ts';

/** Enrolls and configures a machine, starts its build and returns the queued job and the machine. */
async function startBuild(h: () => Harness, n: number, hostname = `node-${n}`) {
  const machine = (await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(n) })).body;
  const configured = await h().request('PUT', `/api/v1/machines/${machine.id}`, {
    body: { hostname, nixos_config: '{ networking.hostName = "x"; }' },
  });
  assert.equal(configured.body.state, 'configured');
  const reply = await h().request('POST', `/api/v1/machines/${machine.id}/build`);
  assert.equal(reply.status, 202, reply.text);
  return { job: reply.body, machine };
}

async function machineEvents(h: () => Harness, machineId: string) {
  const reply = await h().request('GET', `/api/v1/machines/${machineId}/events?limit=500`);
  return reply.body.items.map((e: { type: string; actor: string; reason: string; data: Record<string, unknown> }) => ({
    type: e.type,
    actor: e.actor,
    reason: e.reason,
    data: e.data,
  }));
}

eachDatabase(
  'Build jobs with a builder that succeeds',
  (h) => {
    test('a build runs the builder with the hostname and config file; the job succeeds and the machine is ready', async () => {
      const { job, machine } = await startBuild(h, 1, 'web-1');
      assert.deepEqual(
        {
          type: job.type,
          state: job.state,
          machine_id: job.machine_id,
          attempts: job.attempts,
          max_attempts: job.max_attempts,
          created_by: job.created_by,
          error: job.error,
        },
        { type: 'build', state: 'queued', machine_id: machine.id, attempts: 0, max_attempts: 1, created_by: 'user:admin', error: null },
      );
      const done = await waitForJob(h, job.id);
      assert.deepEqual({ state: done.state, attempts: done.attempts, error: done.error }, { state: 'succeeded', attempts: 1, error: null });
      assert.ok(done.started_at && done.finished_at);
      const log = await h().request('GET', `/api/v1/jobs/${job.id}/log`);
      assert.equal(log.status, 200);
      assert.match(String(log.headers['content-type']), /^text\/plain/);
      assert.match(log.text, /^building web-1$/m);
      assert.doesNotMatch(log.text, /error:/);
      assert.equal((await h().request('GET', `/api/v1/machines/${machine.id}`)).body.state, 'ready');
      const events = (await machineEvents(h, machine.id)).filter(
        (e: { type: string }) => e.type.startsWith('machine.state') || e.type.startsWith('job.'),
      );
      assert.deepEqual(events, [
        { type: 'machine.state_changed', actor: 'user:admin', reason: 'configuration set', data: { from: 'enrolled', to: 'configured' } },
        { type: 'machine.state_changed', actor: 'user:admin', reason: 'build requested', data: { from: 'configured', to: 'building' } },
        { type: 'job.queued', actor: 'user:admin', reason: '', data: { job_id: job.id, job_type: 'build' } },
        { type: 'machine.state_changed', actor: 'system', reason: `build ${job.id} succeeded`, data: { from: 'building', to: 'ready' } },
        { type: 'job.succeeded', actor: 'system', reason: '', data: { job_id: job.id, job_type: 'build' } },
      ]);
    });

    test('GET /api/v1/jobs?machine=serial:… lists only that machine’s jobs', async () => {
      const first = await startBuild(h, 2);
      const second = await startBuild(h, 3);
      await waitForJob(h, first.job.id);
      await waitForJob(h, second.job.id);
      const reply = await h().request('GET', `/api/v1/jobs?machine=serial:${first.machine.service_tag}`);
      assert.equal(reply.status, 200);
      assert.deepEqual(
        reply.body.items.map((j: { id: string; machine_id: string }) => [j.id, j.machine_id]),
        [[first.job.id, first.machine.id]],
      );
      const all = await h().request('GET', '/api/v1/jobs?type=build&state=succeeded');
      assert.ok(all.body.items.length >= 3);
      const newestFirst = all.body.items.map((j: { id: string }) => j.id);
      assert.deepEqual(newestFirst, [...newestFirst].sort().reverse());
      assertProblem(await h().request('GET', '/api/v1/jobs?machine=serial:NOPE'), 'machine_not_found');
    });

    test('cancelling a finished job is a 409 and leaves it succeeded', async () => {
      const { job } = await startBuild(h, 4);
      await waitForJob(h, job.id);
      const url = `/api/v1/jobs/${job.id}/cancel`;
      const reply = await answered(`POST ${url}`, h().request('POST', url));
      assertProblem(reply, 'conflict', url);
      assert.equal((await h().request('GET', `/api/v1/jobs/${job.id}`)).body.state, 'succeeded');
    });
  },
  { env: { MUSTER_BUILDER_COMMAND: 'echo building $MUSTER_HOSTNAME; test -f "$MUSTER_CONFIG_FILE"' } },
);

eachDatabase(
  'Build jobs with a builder that always fails',
  (h) => {
    test('a failing builder is retried, then the job fails with its exit code and the machine is failed', async () => {
      const { job, machine } = await startBuild(h, 1);
      assert.equal(job.max_attempts, 2);
      const done = await waitForJob(h, job.id);
      assert.deepEqual(
        { state: done.state, attempts: done.attempts, max_attempts: done.max_attempts, error: done.error },
        { state: 'failed', attempts: 2, max_attempts: 2, error: 'builder exited with code 3' },
      );
      const log = (await h().request('GET', `/api/v1/jobs/${job.id}/log`)).text;
      assert.equal(log.match(/^oops$/gm)?.length, 2, log);
      assert.equal(log.match(/^--- attempt \d/gm)?.length, 2, log);
      assert.equal((await h().request('GET', `/api/v1/machines/${machine.id}`)).body.state, 'failed');
      const events = (await machineEvents(h, machine.id)).filter((e: { type: string }) => e.type.startsWith('job.'));
      assert.deepEqual(
        events.map((e: { type: string; actor: string; reason: string }) => [e.type, e.actor, e.reason]),
        [
          ['job.queued', 'user:admin', ''],
          ['job.retrying', 'system', 'builder exited with code 3'],
          ['job.failed', 'system', 'builder exited with code 3'],
        ],
      );
      const failed = (await machineEvents(h, machine.id)).at(-2);
      assert.deepEqual(failed, {
        type: 'machine.state_changed',
        actor: 'system',
        reason: `build ${job.id} failed: builder exited with code 3`,
        data: { from: 'building', to: 'failed' },
      });
    });
  },
  { env: { MUSTER_BUILDER_COMMAND: 'echo oops >&2; exit 3', MUSTER_BUILDER_ATTEMPTS: '2' } },
);

eachDatabase(
  'Build jobs with a builder that succeeds on its second attempt',
  (h) => {
    test('a builder that fails once and then succeeds ends succeeded after 2 attempts', async () => {
      const { job, machine } = await startBuild(h, 1);
      const done = await waitForJob(h, job.id);
      assert.deepEqual({ state: done.state, attempts: done.attempts, error: done.error }, { state: 'succeeded', attempts: 2, error: null });
      assert.equal((await h().request('GET', `/api/v1/machines/${machine.id}`)).body.state, 'ready');
      const jobEvents = (await machineEvents(h, machine.id)).filter((e: { type: string }) => e.type.startsWith('job.'));
      assert.deepEqual(
        jobEvents.map((e: { type: string }) => e.type),
        ['job.queued', 'job.retrying', 'job.succeeded'],
      );
    });
  },
  {
    env: {
      MUSTER_BUILDER_COMMAND: 'f="$MUSTER_BUILD_DIR/../count"; n=$(cat "$f" 2>/dev/null || echo 0); echo $((n+1)) > "$f"; [ "$n" -ge 1 ]',
      MUSTER_BUILDER_ATTEMPTS: '2',
    },
  },
);

eachDatabase(
  'Build jobs with a builder that runs too long',
  (h) => {
    test('a builder past its timeout is stopped and the job fails with "timed out"', async () => {
      const { job, machine } = await startBuild(h, 1);
      const done = await waitForJob(h, job.id);
      assert.equal(done.state, 'failed');
      assert.match(done.error, /timed out/);
      assert.equal((await h().request('GET', `/api/v1/machines/${machine.id}`)).body.state, 'failed');
      assert.match((await h().request('GET', `/api/v1/jobs/${job.id}/log`)).text, /builder timed out/);
    });
  },
  { env: { MUSTER_BUILDER_COMMAND: 'sleep 30', MUSTER_BUILDER_TIMEOUT: '1s' } },
);
