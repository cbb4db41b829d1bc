import { errorCodes, type FieldError, MusterError, problemTypeBase } from '@muster/contract';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

function fieldErrors(validation: AjvError[], part: string): FieldError[] {
  return validation.map((e) => {
    if (e.keyword === 'additionalProperties') {
      return { path: `${e.instancePath}/${e.params.additionalProperty}`, message: 'unknown field' };
    }
    if (e.keyword === 'required') {
      return { path: `${e.instancePath}/${e.params.missingProperty}`, message: 'is required' };
    }
    return { path: e.instancePath || (part === 'body' ? '/' : `/${part}`), message: e.message ?? e.keyword };
  });
}

const fastifyCodes: Record<string, MusterError['code']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad_request',
};

/** Errors Fastify's router raises before any route runs (frameworkErrors), with a message a caller can act on. */
export function routerProblem(error: FastifyError, url: string): MusterError {
  const path = url.split('?')[0].slice(0, 80);
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH')
    return new MusterError('uri_too_long', `A path segment of ${path}… is longer than 500 characters`);
  if (error.code === 'FST_ERR_BAD_URL') return new MusterError('bad_request', `The path ${path} is not valid percent-encoded UTF-8`);
  return toMusterError(error);
}

/** The first string (value or key) of a parsed JSON body that holds a lone UTF-16 surrogate, as a JSON pointer. */
export function illFormedString(value: unknown, pointer = ''): string | null {
  if (typeof value === 'string') return value.isWellFormed() ? null : pointer || '/';
  if (typeof value !== 'object' || value === null) return null;
  for (const [key, item] of Object.entries(value)) {
    const here = `${pointer}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    if (!key.isWellFormed()) return here;
    const found = illFormedString(item, here);
    if (found) return found;
  }
  return null;
}

/** Turns anything thrown in a request into a MusterError with a stable code. */
export function toMusterError(error: unknown): MusterError {
  if (error instanceof MusterError) return error;
  const e = error as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (e.validation) {
    const errors = fieldErrors(e.validation, e.validationContext ?? 'body');
    const where = e.validationContext === 'body' ? 'body' : e.validationContext;
    return new MusterError(
      'validation_failed',
      `The request ${where} is not valid: ${errors.map((x) => `${x.path} ${x.message}`).join('; ')}`,
      {
        errors,
      },
    );
  }
  const mapped = e.code ? fastifyCodes[e.code] : undefined;
  if (mapped) return new MusterError(mapped, mapped === 'bad_request' ? `The body is not valid JSON: ${e.message}` : e.message);
  if (e instanceof SyntaxError) return new MusterError('bad_request', `The body is not valid JSON: ${e.message}`);
  if (e.statusCode === 429) return new MusterError('rate_limited', 'Too many requests; slow down and retry later');
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new MusterError('bad_request', e.message);
  return new MusterError('internal', 'An internal error occurred; the server log has the details');
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: MusterError): FastifyReply {
  const entry = errorCodes[error.code];
  if (typeof error.extra.retry_after === 'number') reply.header('retry-after', String(error.extra.retry_after));
  return reply
    .status(entry.status)
    .type('application/problem+json')
    .send({
      type: problemTypeBase + error.code,
      title: entry.title,
      status: entry.status,
      code: error.code,
      detail: error.message,
      instance: request.url.split('?')[0],
      errors: error.errors,
      ...error.extra,
      request_id: request.id,
    });
}
