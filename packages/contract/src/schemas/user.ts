import { type Static, Type } from 'typebox';
import { roles } from '../roles.ts';
import { NullableTimestamp, PlainText, Timestamp } from './common.ts';

export const RoleSchema = Type.Enum(roles);
const Username = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$' });
const Password = Type.String({ minLength: 8, maxLength: 1024, description: 'At least 8 characters' });
const Email = Type.String({ maxLength: 254, pattern: '^$|^[^@\\s]+@[^@\\s]+$' });

export const User = Type.Object({
  id: Type.String(),
  username: Type.String(),
  email: Type.String(),
  role: RoleSchema,
  created_at: Timestamp,
  updated_at: Timestamp,
  last_login_at: NullableTimestamp,
});
export type User = Static<typeof User>;

export const UserCreate = Type.Object(
  { username: Username, email: Type.Optional(Email), password: Password, role: RoleSchema },
  { additionalProperties: false },
);
export type UserCreate = Static<typeof UserCreate>;

export const UserUpdate = Type.Object(
  {
    email: Type.Optional(Email),
    role: Type.Optional(RoleSchema),
    password: Type.Optional(Password),
    current_password: Type.Optional(Type.String({ maxLength: 1024, description: 'Required when changing your own password' })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UserUpdate = Static<typeof UserUpdate>;

export const LoginRequest = Type.Object(
  { username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 1024 }) },
  { additionalProperties: false },
);
export type LoginRequest = Static<typeof LoginRequest>;

export const LoginResponse = Type.Object({ token: Type.String(), expires_at: Timestamp, user: User });

export const SetupRequest = Type.Object(
  { code: Type.String({ minLength: 1, maxLength: 64 }), username: Username, password: Password, email: Type.Optional(Email) },
  { additionalProperties: false },
);

export const ApiToken = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: RoleSchema,
  user_id: Type.String(),
  prefix: Type.String({ description: 'First characters of the token, to recognise it' }),
  created_at: Timestamp,
  expires_at: NullableTimestamp,
  last_used_at: NullableTimestamp,
  revoked_at: NullableTimestamp,
});
export type ApiToken = Static<typeof ApiToken>;

export const ApiTokenCreate = Type.Object(
  {
    name: PlainText({ minLength: 1, maxLength: 100 }),
    role: Type.Optional(RoleSchema),
    expires_in: Type.Optional(Type.String({ pattern: '^[0-9]+(s|m|h|d)$', description: 'e.g. 90d; never expires when absent' })),
  },
  { additionalProperties: false },
);
export type ApiTokenCreate = Static<typeof ApiTokenCreate>;

export const ApiTokenCreated = Type.Object({
  ...ApiToken.properties,
  token: Type.String({ description: 'The secret; shown only in this response' }),
});
