/** Every error muster reports, by stable code. HTTP status for the API, exit code for the CLI. */
export const errorCodes = {
  bad_request: { status: 400, exit: 2, title: 'The request is malformed' },
  validation_failed: { status: 400, exit: 2, title: 'The request does not match the schema' },
  invalid_identifier: { status: 400, exit: 2, title: 'An identifier is not valid' },
  no_usable_identifier: { status: 400, exit: 2, title: 'No usable identifier was given' },
  unauthenticated: { status: 401, exit: 5, title: 'Authentication is required' },
  invalid_credentials: { status: 401, exit: 5, title: 'Username or password is wrong' },
  invalid_token: { status: 401, exit: 5, title: 'The token is invalid, expired or revoked' },
  boot_refused: { status: 403, exit: 4, title: 'A rule refuses this machine' },
  invalid_claim: { status: 403, exit: 5, title: 'The claim is not valid' },
  forbidden: { status: 403, exit: 5, title: 'Your role does not allow this' },
  ca_policy_violation: { status: 403, exit: 4, title: 'The CA policy does not allow this certificate' },
  not_found: { status: 404, exit: 3, title: 'Not found' },
  machine_not_found: { status: 404, exit: 3, title: 'No such machine' },
  conflict: { status: 409, exit: 4, title: 'The request conflicts with the current state' },
  illegal_transition: { status: 409, exit: 4, title: 'The machine cannot move to that state' },
  identifier_conflict: { status: 409, exit: 4, title: 'An identifier belongs to another machine' },
  already_exists: { status: 409, exit: 4, title: 'A resource with that name already exists' },
  idempotency_mismatch: { status: 422, exit: 4, title: 'Idempotency key reused with a different request' },
  machine_retired: { status: 410, exit: 4, title: 'The machine was retired' },
  payload_too_large: { status: 413, exit: 2, title: 'The request body is too large' },
  uri_too_long: { status: 414, exit: 2, title: 'The request URI is too long' },
  unsupported_media_type: { status: 415, exit: 2, title: 'The request body has the wrong content type' },
  rate_limited: { status: 429, exit: 6, title: 'Too many requests' },
  internal: { status: 500, exit: 1, title: 'Internal error' },
  hook_failed: { status: 502, exit: 1, title: 'A hook endpoint did not answer as the profile expects' },
  unavailable: { status: 503, exit: 6, title: 'The server is not ready' },
  // The server's time budget for a template ran out (a slow template, or a loaded server): not the caller's fault.
  render_timeout: { status: 503, exit: 6, title: 'A template did not render within the time limit' },
  render_busy: { status: 503, exit: 6, title: 'Too many templates are waiting to render; retry shortly' },
} as const;

export type ErrorCode = keyof typeof errorCodes;

export interface FieldError {
  path: string;
  message: string;
}

/** The one error type services throw; the edges turn it into problem+json or an exit code. */
export class MusterError extends Error {
  readonly code: ErrorCode;
  readonly errors: FieldError[];
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, detail: string, options: { errors?: FieldError[]; extra?: Record<string, unknown> } = {}) {
    super(detail);
    this.name = 'MusterError';
    this.code = code;
    this.errors = options.errors ?? [];
    this.extra = options.extra ?? {};
  }

  get status(): number {
    return errorCodes[this.code].status;
  }
}

export const problemTypeBase = 'https://muster.dev/problems/';

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCodes, value);
}
