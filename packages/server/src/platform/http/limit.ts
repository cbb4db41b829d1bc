import { MusterError } from '@muster/contract';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type SourceLimiter, sourceKey } from '../limits/limiter.ts';

/** Refuses with 429 problem+json and Retry-After when the caller's address has no tokens left. */
export function throttled(reply: FastifyReply, seconds: number, detail: string): MusterError {
  reply.header('retry-after', String(seconds));
  return new MusterError('rate_limited', `${detail}; retry in ${seconds} s`, { extra: { retry_after: seconds } });
}

/** An onRequest hook: one token per request from the bucket of the client's address (request.ip; IPv6 by /64). */
export function limitBySource(limiter: SourceLimiter, door: string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const wait = limiter.take(sourceKey(request.ip));
    if (wait > 0) throw throttled(reply, wait, `Too many requests from ${request.ip} to ${door}`);
  };
}
