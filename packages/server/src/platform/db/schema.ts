import type { Generated } from 'kysely';

/** Row types of muster's tables. Times are ISO 8601 UTC text, JSON is text, on both databases (docs/storage.md). */
export interface UserRow {
  id: string;
  username: string;
  email: string;
  role: string;
  password_hash: string;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

export interface ApiTokenRow {
  id: string;
  user_id: string;
  name: string;
  role: string;
  token_hash: string;
  prefix: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface FleetRow {
  id: string;
  name: string;
  description: string;
  next_seq: number;
  created_at: string;
  updated_at: string;
}

export interface MachineRow {
  id: string;
  state: string;
  /** '' when the machine has none (the API shows null): a plain column sorts alike on both databases. */
  hostname: string;
  description: string;
  service_tag: string | null;
  mac_address: string | null;
  fleet_id: string | null;
  fleet_seq: number | null;
  facts: string;
  nixos_config: string;
  enrolled_at: string | null;
  last_seen_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface MachineLabelRow {
  machine_id: string;
  key: string;
  value: string;
}

export interface IdentifierRow {
  kind: string;
  value: string;
  machine_id: string;
  created_at: string;
}

export interface GroupRow {
  id: string;
  name: string;
  description: string;
  tags: string;
  created_at: string;
  updated_at: string;
}

export interface GroupMemberRow {
  group_id: string;
  machine_id: string;
  added_at: string;
}

export interface EventRow {
  id: Generated<number>;
  type: string;
  machine_id: string | null;
  actor: string;
  reason: string;
  data: string;
  created_at: string;
}

export interface JobRow {
  id: string;
  type: string;
  state: string;
  machine_id: string | null;
  payload: string;
  attempts: number;
  max_attempts: number;
  run_at: string;
  locked_by: string | null;
  locked_until: string | null;
  error: string | null;
  log: string;
  created_by: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

export interface SettingRow {
  key: string;
  value: string;
  updated_at: string;
}

export interface IdempotencyKeyRow {
  user_id: string;
  key: string;
  request_hash: string;
  status: number;
  response: string;
  created_at: string;
}

export interface Database {
  users: UserRow;
  api_tokens: ApiTokenRow;
  fleets: FleetRow;
  machines: MachineRow;
  machine_labels: MachineLabelRow;
  identifiers: IdentifierRow;
  groups: GroupRow;
  group_members: GroupMemberRow;
  events: EventRow;
  jobs: JobRow;
  settings: SettingRow;
  idempotency_keys: IdempotencyKeyRow;
}
