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
  /** Sessions carry the generation they were issued in; a password change moves it on, ending them all. */
  session_generation: number;
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
  /** The token that created this one, if a token did: revoking it revokes this one too. */
  parent_id: string | null;
}

export interface FleetRow {
  id: string;
  name: string;
  description: string;
  next_seq: number;
  created_at: string;
  updated_at: string;
}

/** A pre-allocated device of a fleet (docs/identity.md): claimed once, with its one-time password, by one hardware id. */
export interface FleetSlotRow {
  id: string;
  fleet_id: string;
  fleet_seq: number;
  hostname: string;
  /** SHA-256 of the one-time password, hex. */
  otp_hash: string;
  /** Unique across fleets; null once released (the machine retired). */
  tunnel_port: number | null;
  hwid: string | null;
  machine_id: string | null;
  ssh_public_key: string | null;
  claimed_at: string | null;
  claimed_from: string | null;
  /** What of the claim's answer is kept, JSON (the certificate): a retry with proof gets the rest rendered again. */
  answer: string | null;
  /** The public key of the claim's CSR (SPKI, DER, base64): a retry proves possession of it. */
  device_key: string | null;
  released_at: string | null;
  created_at: string;
}

/** An enrollment token (docs/identity.md): the secret is stored as SHA-256. */
export interface EnrollmentTokenRow {
  id: string;
  name: string;
  token_hash: string;
  fleet_id: string | null;
  /** JSON object. */
  labels: string;
  approval: 'auto' | 'manual' | 'rules';
  /** The profile machines claimed with it get, unless a rule sets one. */
  profile: string | null;
  max_uses: number | null;
  uses: number;
  expires_at: string | null;
  revoked_at: string | null;
  created_by: string;
  created_at: string;
}

/** A claim made with an enrollment token: pending until approved when the token asks for approval. */
export interface TokenClaimRow {
  machine_id: string;
  token_id: string;
  hwid: string;
  /** Kept until the claim is decided, to issue the certificate on approval. */
  csr: string | null;
  status: 'pending' | 'approved' | 'rejected';
  /** What of the answer is kept once approved, JSON (the certificate): never files or anything rendered. */
  answer: string | null;
  /** The public key of the claim's CSR (SPKI, DER, base64): a retry proves possession of it. */
  device_key: string | null;
  source: string;
  created_at: string;
  decided_at: string | null;
  decided_by: string | null;
}

/** A certificate muster's CA issued. */
export interface CertificateRow {
  /** Hex, lower case. */
  serial: string;
  machine_id: string | null;
  subject: string;
  not_before: string;
  not_after: string;
  pem: string;
  revoked_at: string | null;
  revoke_reason: string | null;
  created_at: string;
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
  /** The Pi boot tree the machine netboots from, chosen by a rule or by hand; null when none. */
  pi_tree: string | null;
  /** The profile and the version of it the machine got (docs/profiles.md); null when it has none. */
  profile: string | null;
  profile_version: number | null;
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

export interface ArtifactRow {
  sha256: string;
  size: number;
  name: string;
  created_by: string;
  created_at: string;
}

export interface ArtifactNameRow {
  name: string;
  sha256: string;
  updated_at: string;
}

export interface PiTreeRow {
  name: string;
  /** JSON: PiTreeFile[] (path served, sha256 of the artifact, size, template). */
  files: string;
  created_at: string;
  updated_at: string;
}

export interface RuleRow {
  name: string;
  priority: number;
  door: string;
  serial_pattern: string | null;
  mac_prefix: string | null;
  action: string;
  pi_tree: string | null;
  labels: string;
  /** Fleet name, profile name and approval (auto or pending) the rule sets; null when it sets none. */
  fleet: string | null;
  profile: string | null;
  approval: string | null;
  /** JSON object: fact path → glob or comparison. */
  facts: string;
  /** JSON object: label → glob, matched against the labels the door gives (an enrollment token's). */
  match_labels: string;
  created_at: string;
  updated_at: string;
}

export interface ProfileRow {
  name: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface ProfileVersionRow {
  profile: string;
  version: number;
  /** JSON of the ProfileSpec. */
  spec: string;
  digest: string;
  actor: string;
  comment: string;
  created_at: string;
}

/** An HTTP endpoint hooks may call, defined by an admin; the credential is sealed (docs/secrets.md). */
export interface EndpointRow {
  name: string;
  url: string;
  credential: string | null;
  created_at: string;
  updated_at: string;
}

/** A machine's secret ({{ secret }} in its profile's templates), sealed with the master key. */
export interface MachineSecretRow {
  machine_id: string;
  secret: string;
  created_at: string;
  updated_at: string;
}

export interface BootScriptRow {
  name: string;
  body: string;
  updated_at: string;
}

export interface BootSessionRow {
  id: string;
  machine_id: string;
  door: string;
  client: string;
  started_at: string;
  last_at: string;
  requests: number;
  bytes: number;
  errors: number;
}

export interface BootRequestRow {
  session_id: string;
  seq: number;
  at: string;
  door: string;
  path: string;
  status: string;
  bytes: number;
  duration_ms: number;
  error: string | null;
  count: number;
  last_at: string | null;
}

/** Failures of one key at one moment (ms), shared by replicas on PostgreSQL; prunable from expires_at (ms). */
export interface LimitFailureRow {
  scope: string;
  key: string;
  at: number;
  count: number;
  expires_at: number;
}

/**
 * A server-wide budget's current window (ms) on PostgreSQL: `reserved` is what replicas asked for in it (a grant
 * is what of an ask fits under the limit); `reported` is 1 once a replica has reported it spent.
 */
export interface LimitBudgetRow {
  scope: string;
  window_start: number;
  window_end: number;
  reserved: number;
  reported: number;
}

export interface Database {
  users: UserRow;
  api_tokens: ApiTokenRow;
  fleets: FleetRow;
  fleet_slots: FleetSlotRow;
  certificates: CertificateRow;
  enrollment_tokens: EnrollmentTokenRow;
  token_claims: TokenClaimRow;
  fleet_ip_pools: { fleet_id: string; cidr: string; created_at: string };
  ip_allocations: { fleet_id: string; address: string; machine_id: string; created_at: string };
  machines: MachineRow;
  machine_labels: MachineLabelRow;
  identifiers: IdentifierRow;
  groups: GroupRow;
  group_members: GroupMemberRow;
  events: EventRow;
  jobs: JobRow;
  settings: SettingRow;
  idempotency_keys: IdempotencyKeyRow;
  artifacts: ArtifactRow;
  artifact_names: ArtifactNameRow;
  pi_trees: PiTreeRow;
  rules: RuleRow;
  profiles: ProfileRow;
  profile_versions: ProfileVersionRow;
  endpoints: EndpointRow;
  machine_secrets: MachineSecretRow;
  boot_scripts: BootScriptRow;
  boot_sessions: BootSessionRow;
  boot_requests: BootRequestRow;
  limit_failures: LimitFailureRow;
  limit_budgets: LimitBudgetRow;
}
