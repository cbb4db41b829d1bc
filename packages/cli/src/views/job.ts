import type { Job } from '@muster/contract';
import { formatAgo, formatTime, renderFields, renderTable } from '../output.ts';

export function jobTable(jobs: readonly Job[], now: number = Date.now()): string {
  return renderTable(
    ['ID', 'TYPE', 'STATE', 'MACHINE', 'ATTEMPTS', 'CREATED', 'ERROR'],
    jobs.map((j) => [j.id, j.type, j.state, j.machine_id, `${j.attempts}/${j.max_attempts}`, formatAgo(j.created_at, now), j.error]),
  );
}

export function jobFields(j: Job): string {
  return renderFields([
    ['id', j.id],
    ['type', j.type],
    ['state', j.state],
    ['machine', j.machine_id],
    ['attempts', `${j.attempts} of ${j.max_attempts}`],
    ['error', j.error],
    ['created by', j.created_by],
    ['created', formatTime(j.created_at)],
    ['run at', formatTime(j.run_at)],
    ['started', formatTime(j.started_at)],
    ['finished', formatTime(j.finished_at)],
  ]);
}
