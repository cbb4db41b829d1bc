import { type IpxeParams, IpxeQuery, ipxeSettings, MusterError } from '@muster/contract';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { sendArtifact } from '../../modules/artifacts/send.ts';
import type { ArtifactService } from '../../modules/artifacts/service.ts';
import { limitBySource, throttled } from '../../platform/http/limit.ts';
import type { App } from '../../platform/http/types.ts';
import type { InFlightLimiter } from '../../platform/limits/in-flight.ts';
import { type SourceLimiter, sourceKey } from '../../platform/limits/limiter.ts';
import { type ArtifactUrlSigner, bootPhase } from '../core/signing.ts';
import type { BootTimeline } from '../core/timeline.ts';
import { chainScript, type IpxeService } from './answer.ts';

const tags = ['boot'];

/** The longest value of one setting that is read (the query schema refuses longer ones with 400). */
const maxSettingLength = 256;
const isSetting = (name: string): name is keyof IpxeParams => Object.hasOwn(ipxeSettings, name);

/**
 * The settings of the query that muster reads (ipxeSettings), as iPXE meant them: iPXE's uristring leaves '+'
 * unencoded, so '+' is a plus here, not a space as form decoding would have it ("i440FX + PIIX"). Any other
 * key is dropped, and so is an overlong value: an anonymous request cannot make muster keep what it never reads.
 */
export function ipxeQuery(url: string): IpxeParams {
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const params: IpxeParams = {};
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    try {
      const name = decodeURIComponent(pair.slice(0, eq));
      const value = decodeURIComponent(pair.slice(eq + 1));
      if (isSetting(name) && value.length <= maxSettingLength) params[name] = value;
    } catch {
      // A malformed escape leaves that setting out, as if iPXE had not sent it.
    }
  }
  return params;
}

/** The /ipxe request as the timeline keeps it and the wait loop asks again: only the settings read, in their order. */
export function ipxePath(params: IpxeParams): string {
  const query = Object.keys(ipxeSettings)
    .filter(isSetting)
    .flatMap((name) => (params[name] === undefined ? [] : [`${name}=${encodeURIComponent(params[name])}`]))
    .join('&');
  return query ? `/ipxe?${query}` : '/ipxe';
}

function baseUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

/**
 * iPXE's front door (DESIGN.md): /boot.ipxe, the per-machine /ipxe answer, and seed 003's /nixos/machines/<tag>.ipxe.
 * A source has few answers worked on at once (each may render an operator's template) and a bounded line waiting
 * their turn; one more is refused before it costs anything.
 */
export function ipxeRoutes(app: App, ipxe: IpxeService, timeline: BootTimeline, limiter: SourceLimiter, answering: InFlightLimiter): void {
  const onRequest = limitBySource(limiter, 'the boot doors');
  const send = async (request: FastifyRequest, reply: FastifyReply, params: IpxeParams, path: string): Promise<FastifyReply> => {
    const entered = answering.enter(sourceKey(request.ip));
    if (!entered) throw throttled(reply, 1, `Too many iPXE answers at once for ${request.ip}`);
    const leave = await entered;
    try {
      return await respond(request, reply, params, path);
    } finally {
      leave();
    }
  };
  const respond = async (request: FastifyRequest, reply: FastifyReply, params: IpxeParams, path: string) => {
    const started = performance.now();
    const answer = await ipxe.answer(params, baseUrl(request), request.ip, `${baseUrl(request)}${path}`);
    const record = {
      door: 'ipxe' as const,
      client: request.ip,
      path: path.slice(0, 1024),
      status: answer.status === 200 ? ('ok' as const) : answer.status === 403 ? ('refused' as const) : ('not_found' as const),
      bytes: Buffer.byteLength(answer.script),
      durationMs: performance.now() - started,
      error: null,
      at: new Date(),
    };
    if (answer.retryAfter) reply.header('retry-after', String(answer.retryAfter));
    if (answer.machineId)
      await timeline.record(answer.machineId, record).catch((error) => request.log.error({ err: error }, 'boot timeline not recorded'));
    return reply.status(answer.status).type('text/plain; charset=utf-8').send(answer.script);
  };

  app.get('/boot.ipxe', {
    config: { action: 'public' },
    onRequest,
    schema: { tags, security: [], summary: 'iPXE entry script: chains to /ipxe with the machine’s identifiers' },
    handler: async (request, reply) => {
      const script = chainScript(baseUrl(request));
      timeline.holdAnonymous({
        door: 'ipxe',
        client: request.ip,
        path: '/boot.ipxe',
        status: 'ok',
        bytes: Buffer.byteLength(script),
        durationMs: 0,
        error: null,
        at: new Date(),
      });
      return reply.type('text/plain; charset=utf-8').send(script);
    },
  });
  app.get('/ipxe', {
    config: { action: 'public' },
    onRequest,
    schema: {
      tags,
      security: [],
      summary: 'The iPXE answer for one machine, by its state',
      description:
        'registration (unknown, discovered, enrolled), a wait loop (configured, building), the ready script (ready), exit (provisioned).',
      querystring: IpxeQuery,
    },
    handler: (request, reply) => {
      const params = ipxeQuery(request.url);
      return send(request, reply, params, ipxePath(params));
    },
  });
  app.get('/nixos/machines/:file', {
    config: { action: 'public' },
    onRequest,
    schema: {
      tags,
      security: [],
      summary: 'Seed 003 compatibility: the iPXE answer by service tag (<tag>.ipxe)',
      params: Type.Object({ file: Type.String({ pattern: '^[^/]{1,200}\\.ipxe$' }) }),
    },
    handler: (request, reply) => send(request, reply, { serial: request.params.file.replace(/\.ipxe$/, '') }, request.url.split('?')[0]),
  });
}

const ArtifactParams = Type.Object({ sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }), filename: Type.String({ maxLength: 255 }) });
const SignedQuery = Type.Object({
  m: Type.String({ maxLength: 64 }),
  p: Type.String({ maxLength: 16 }),
  e: Type.Integer({ minimum: 0 }),
  s: Type.String({ maxLength: 64 }),
});

/** Artifacts for machines, by the signed URLs their boot answers carry; each fetch goes into the machine's timeline. */
export function bootArtifactRoutes(
  app: App,
  artifacts: ArtifactService,
  signer: ArtifactUrlSigner,
  timeline: BootTimeline,
  limiter: SourceLimiter,
  machineState: (machineId: string) => Promise<string | null>,
): void {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/boot/artifacts/:sha256/:filename',
    config: { action: 'public' },
    onRequest: limitBySource(limiter, 'the boot doors'),
    schema: {
      tags,
      security: [],
      summary: 'An artifact for the machine whose boot answer referenced it (signed URL)',
      params: ArtifactParams,
      querystring: SignedQuery,
    },
    handler: async (request, reply) => {
      const { sha256 } = request.params;
      const { m: machineId, p: phase, e: expires, s: signature } = request.query;
      const verdict = signer.verify({ machineId, phase, expires, signature }, sha256);
      if (verdict === 'forged') throw new MusterError('forbidden', 'This URL is not signed for that machine and artifact');
      if (verdict === 'expired') throw new MusterError('forbidden', 'This URL has expired; boot again for a fresh one');
      const state = await machineState(machineId);
      if (state === null || bootPhase(state) !== phase)
        throw new MusterError('forbidden', 'This URL belongs to an earlier boot of the machine; boot again for a fresh one');
      const artifact = await artifacts.get(sha256);
      const started = performance.now();
      const at = new Date();
      let recorded = false;
      const record = (complete: boolean) => {
        if (recorded) return;
        recorded = true;
        const entry = {
          door: 'http' as const,
          client: request.ip,
          path: request.url.split('?')[0],
          status: complete ? ('ok' as const) : ('aborted' as const),
          bytes: complete ? Number(reply.getHeader('content-length') ?? 0) : 0,
          durationMs: performance.now() - started,
          error: complete ? null : 'connection closed before the end',
          at,
        };
        timeline.record(machineId, entry).catch((error) => request.log.error({ err: error }, 'boot timeline not recorded'));
      };
      reply.raw.once('finish', () => record(true));
      reply.raw.once('close', () => record(reply.raw.writableFinished));
      return sendArtifact(request, reply, artifact, { cacheControl: 'private, max-age=3600' });
    },
  });
}
