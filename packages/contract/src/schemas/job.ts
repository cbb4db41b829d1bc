import { type Static, Type } from 'typebox';
import { NullableTimestamp, PageQuery, Timestamp } from './common.ts';

export const jobStates = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof jobStates)[number];
export const JobStateSchema = Type.Enum(jobStates);

export const Job = Type.Object({
  id: Type.String(),
  type: Type.String(),
  state: JobStateSchema,
  machine_id: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Integer(),
  max_attempts: Type.Integer(),
  run_at: Timestamp,
  error: Type.Union([Type.String(), Type.Null()]),
  created_by: Type.String(),
  created_at: Timestamp,
  started_at: NullableTimestamp,
  finished_at: NullableTimestamp,
});
export type Job = Static<typeof Job>;

export const JobListQuery = Type.Object(
  {
    ...PageQuery,
    state: Type.Optional(JobStateSchema),
    type: Type.Optional(Type.String({ maxLength: 64 })),
    machine: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type JobListQuery = Static<typeof JobListQuery>;
