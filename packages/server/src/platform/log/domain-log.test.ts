import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Event } from '@muster/contract';
import type { FastifyBaseLogger } from 'fastify';
import { DomainLog } from './domain-log.ts';

function recorder() {
  const lines: { level: string; fields: unknown; msg: string }[] = [];
  const at = (level: string) => (fields: unknown, msg: string) => lines.push({ level, fields, msg });
  const log = { info: at('info'), warn: at('warn'), debug: at('debug'), error: at('error') } as unknown as FastifyBaseLogger;
  return { log, lines };
}

let nextId = 1;
function event(type: string, machine: string | null, data: Record<string, unknown>, extra: Partial<Event> = {}): Event {
  return { id: nextId++, type, machine_id: machine, actor: 'device', reason: '', data, created_at: '2026-12-03T00:00:00Z', ...extra };
}

describe('the domain log', () => {
  test('one line for each event worth knowing, none for the rest', () => {
    const { log, lines } = recorder();
    const domain = new DomainLog(log);
    domain.observe([
      event('machine.discovered', 'm1', { door: 'pi', client: '10.0.0.7', rule: 'lab' }),
      event('machine.enrolled', 'm2', { created: true, source: '10.0.0.8' }),
      event('machine.state_changed', 'm2', { from: 'enrolled', to: 'configured' }, { actor: 'user:ada', reason: 'racked' }),
      event('job.succeeded', 'm2', { job_id: 'j1', job_type: 'build' }),
      event('job.failed', 'm3', { job_id: 'j2', job_type: 'build' }, { reason: 'builder exited with code 2' }),
      event('fleet.created', null, { name: 'edge' }),
    ]);
    domain.stop();
    assert.deepEqual(lines, [
      { level: 'info', fields: { machine: 'm1', door: 'pi', client: '10.0.0.7', rule: 'lab' }, msg: 'machine discovered' },
      { level: 'info', fields: { machine: 'm2', source: '10.0.0.8' }, msg: 'machine enrolled' },
      {
        level: 'info',
        fields: { machine: 'm2', from: 'enrolled', to: 'configured', actor: 'user:ada', reason: 'racked' },
        msg: 'machine state changed',
      },
      { level: 'info', fields: { machine: 'm2', job: 'j1', result: 'succeeded' }, msg: 'build finished' },
      {
        level: 'warn',
        fields: { machine: 'm3', job: 'j2', result: 'failed', reason: 'builder exited with code 2' },
        msg: 'build finished',
      },
    ]);
  });

  test('boot requests make one line per session, once the session has been quiet a minute', () => {
    const { log, lines } = recorder();
    let clock = 1_000_000;
    const domain = new DomainLog(log, { now: () => clock, quietMs: 60_000 });
    const request = (path: string, status: string, bytes: number) =>
      event('boot.request', 'm1', { session_id: 'b1', door: 'pi', client: '10.0.0.7', path, status, bytes });
    domain.observe([request('start4.elf', 'ok', 2_000_000), request('config.txt', 'ok', 300)]);
    clock += 5_000;
    domain.observe([request('kernel8.img', 'ok', 8_000_000), request('overlays/x.dtbo', 'not_found', 0)]);
    clock += 30_000;
    domain.sweep();
    assert.deepEqual(lines, [], 'not yet quiet');
    clock += 31_000;
    domain.sweep();
    domain.stop();
    assert.deepEqual(lines, [
      {
        level: 'info',
        fields: { machine: 'm1', session: 'b1', doors: ['pi'], client: '10.0.0.7', files: 4, bytes: 10_000_300, errors: 1, seconds: 5 },
        msg: 'boot session ended',
      },
    ]);
  });

  test('sessions followed at once are bounded: the oldest is reported early', () => {
    const { log, lines } = recorder();
    const domain = new DomainLog(log, { maxSessions: 2 });
    for (const id of ['b1', 'b2', 'b3'])
      domain.observe([event('boot.request', 'm1', { session_id: id, door: 'ipxe', status: 'ok', bytes: 1 })]);
    domain.stop();
    assert.deepEqual(
      lines.map((line) => (line.fields as { session: string }).session),
      ['b1'],
    );
  });
});
