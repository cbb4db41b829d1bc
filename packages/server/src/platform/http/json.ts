import { MusterError } from '@muster/contract';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { illFormedString } from './problem.ts';

const surrogateEscape = /\\u[dD][89a-fA-F]/;

/**
 * JSON bodies: an empty body is no body (many clients send a JSON content type on POSTs that take none, such as
 * build or cancel), and a lone surrogate anywhere is a 400.
 */
export const jsonBodies = fp(
  async (app: FastifyInstance) => {
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      if (body === '') return done(null, undefined);
      parseJson(request, body as string, (error, parsed) => {
        if (error) return done(error, undefined);
        // A lone surrogate (\ud800) is valid JSON but no valid text: stored, it breaks unique indexes and strict
        // readers. Only an escape can make one (UTF-8 decoding cannot), so bodies without one are not walked.
        const at = surrogateEscape.test(body as string) ? illFormedString(parsed) : null;
        if (at !== null)
          return done(
            new MusterError('validation_failed', `The request body is not valid: ${at} holds a lone UTF-16 surrogate`, {
              errors: [{ path: at, message: 'holds a lone UTF-16 surrogate, which is not text' }],
            }),
            undefined,
          );
        done(null, parsed);
      });
    });
  },
  { name: 'muster-json' },
);
