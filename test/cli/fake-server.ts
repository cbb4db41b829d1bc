import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  authorization: string | undefined;
  body: unknown;
}

export interface Reply {
  status?: number;
  type?: string;
  body?: unknown;
}

/** A stand-in for muster's API that answers from a route table and records what the CLI sent. */
export interface FakeServer {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : JSON.parse(text);
}

export async function startFakeServer(routes: Record<string, (request: RecordedRequest) => Reply>): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  const server: Server = createServer(async (request, response) => {
    const recorded: RecordedRequest = {
      method: request.method ?? 'GET',
      url: request.url ?? '/',
      authorization: request.headers.authorization,
      body: await readBody(request),
    };
    requests.push(recorded);
    const route = routes[`${recorded.method} ${recorded.url.split('?')[0]}`];
    const reply: Reply = route
      ? route(recorded)
      : {
          status: 404,
          type: 'application/problem+json',
          body: { type: 'x', title: 'Not found', status: 404, code: 'not_found', detail: 'no route', errors: [] },
        };
    const status = reply.status ?? 200;
    if (reply.body === undefined) {
      response.writeHead(status).end();
      return;
    }
    const type = reply.type ?? 'application/json';
    response.writeHead(status, { 'content-type': type }).end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export function problem(status: number, code: string, detail: string, errors: { path: string; message: string }[] = []): Reply {
  return {
    status,
    type: 'application/problem+json',
    body: { type: `https://muster.dev/problems/${code}`, title: code, status, code, detail, errors },
  };
}
