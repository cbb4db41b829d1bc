import { type Static, Type } from 'typebox';
import { ProseText } from './common.ts';
import { MachineStateSchema, MachineUpdate } from './machine.ts';

export const bulkOperations = ['update', 'build', 'transition', 'add_to_group', 'remove_from_group'] as const;

export const BulkRequest = Type.Object(
  {
    machine_ids: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 1000 })),
    group_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    operation: Type.Enum(bulkOperations),
    data: Type.Optional(
      Type.Object(
        {
          ...MachineUpdate.properties,
          to: Type.Optional(MachineStateSchema),
          reason: Type.Optional(ProseText({ maxLength: 1024 })),
          group: Type.Optional(Type.String({ maxLength: 200 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type BulkRequest = Static<typeof BulkRequest>;

export const BulkResult = Type.Object({
  operation: Type.String(),
  total: Type.Integer(),
  succeeded: Type.Integer(),
  failed: Type.Integer(),
  results: Type.Array(
    Type.Object({
      machine_id: Type.String(),
      ok: Type.Boolean(),
      code: Type.Optional(Type.String()),
      detail: Type.Optional(Type.String()),
      job_id: Type.Optional(Type.String()),
    }),
  ),
});
export type BulkResult = Static<typeof BulkResult>;
