import type { BootDoor, BootRequest, BootSession, BootSessionDetail, PageResult } from '@muster/contract';
import { MusterError } from '@muster/contract';
import { resolveMachine } from '../../modules/machines/service.ts';
import { lockMachineRow } from '../../modules/machines/store.ts';
import { newId } from '../../platform/crypto/ids.ts';
import { defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { BootSessionRow } from '../../platform/db/schema.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import {
  extendSession,
  findOpenSession,
  findSessionRow,
  insertRequest,
  insertSession,
  lastRequest,
  repeatRequest,
  sessionRequests,
  sessionRows,
} from './store.ts';

/** One request a machine made at a front door, as the timeline keeps it. */
export interface BootRecord {
  door: BootDoor;
  client: string;
  path: string;
  status: BootRequest['status'];
  bytes: number;
  durationMs: number;
  error: string | null;
  at: Date;
}

/** Requests further apart than this start a new boot session. */
export const sessionGapMs = 5 * 60_000;
/** Requests of a client not yet identified (/boot.ipxe, undionly.kpxe) wait this long for it to say who it is. */
const anonymousTtlMs = 2 * 60_000;
const anonymousPerClient = 16;
const anonymousClients = 10_000;

function sessionFromRow(row: BootSessionRow): BootSession {
  return { ...row, door: row.door as BootDoor, bytes: Number(row.bytes) };
}

/** Request rows one session keeps; past them a request only adds to the session's totals. */
export const maxRowsPerSession = 1000;

async function openSession(tx: Tx, machineId: string, record: BootRecord): Promise<{ id: string; rows: number; last?: LastRequest }> {
  const at = record.at.toISOString();
  const since = new Date(record.at.getTime() - sessionGapMs).toISOString();
  const open = await findOpenSession(tx.db, machineId, since);
  const failed = record.status === 'ok' ? 0 : 1;
  if (!open) {
    const id = newId('b');
    await insertSession(tx.db, {
      id,
      machine_id: machineId,
      door: record.door,
      client: record.client,
      started_at: at,
      last_at: at,
      requests: 1,
      bytes: record.bytes,
      errors: failed,
    });
    return { id, rows: 0 };
  }
  await extendSession(tx.db, open.id, at, record.bytes, failed);
  const last = await lastRequest(tx.db, open.id);
  return { id: open.id, rows: last?.seq ?? 0, last };
}

interface LastRequest {
  seq: number;
  door: string;
  path: string;
  status: string;
}

/**
 * Files one request. The same request again in a row (same door, path and status: a firmware retrying, a
 * wait loop, a flood of one MAC) adds to that row's count and writes no event; a session keeps at most
 * maxRowsPerSession rows. So a machine's rows and events grow with what it does differently, not with how often.
 */
async function appendInTx(tx: Tx, machineId: string, record: BootRecord): Promise<void> {
  const at = record.at.toISOString();
  // One writer per machine at a time on PostgreSQL, so two requests cannot both open a session.
  await lockMachineRow(tx, machineId);
  const session = await openSession(tx, machineId, record);
  const { last } = session;
  if (last && last.door === record.door && last.path === record.path && last.status === record.status) {
    await repeatRequest(tx.db, session.id, last.seq, record.bytes, at);
    return;
  }
  if (session.rows >= maxRowsPerSession) return;
  const seq = session.rows + 1;
  await insertRequest(tx.db, {
    session_id: session.id,
    seq,
    at,
    door: record.door,
    path: record.path,
    status: record.status,
    bytes: record.bytes,
    duration_ms: Math.round(record.durationMs),
    error: record.error,
    count: 1,
    last_at: at,
  });
  await tx.emit({
    type: 'boot.request',
    machineId,
    actor: 'device',
    data: {
      session_id: session.id,
      new_session: seq === 1,
      door: record.door,
      client: record.client,
      path: record.path,
      status: record.status,
      bytes: record.bytes,
      duration_ms: Math.round(record.durationMs),
      error: record.error,
    },
  });
}

/**
 * The boot timeline: every request a machine makes at a front door, grouped into boot sessions. Requests
 * made before the machine said who it is (/boot.ipxe, a PXE ROM's TFTP fetch of iPXE) are held briefly by
 * client address and filed under the machine once it does. That memory is per server process.
 */
export class BootTimeline {
  readonly #tx: Transactor;
  readonly #anonymous = new Map<string, BootRecord[]>();

  readonly #counted: (record: BootRecord) => void;

  /** `counted` hears of every request, recorded or held, before it is coalesced (for metrics). */
  constructor(tx: Transactor, counted: (record: BootRecord) => void = () => {}) {
    this.#tx = tx;
    this.#counted = counted;
  }

  /** Files a request under a machine; failures to record are the caller's to log, never the device's problem. */
  async record(machineId: string, record: BootRecord): Promise<void> {
    this.#counted(record);
    const earlier = this.#anonymous.get(record.client);
    this.#anonymous.delete(record.client);
    const fresh = (earlier ?? []).filter((r) => record.at.getTime() - r.at.getTime() < anonymousTtlMs);
    await this.#tx.run(async (tx) => {
      for (const r of [...fresh, record]) await appendInTx(tx, machineId, r);
    });
  }

  /** Holds a request of a client that has not said who it is. */
  holdAnonymous(record: BootRecord): void {
    this.#counted(record);
    const list = this.#anonymous.get(record.client) ?? [];
    if (list.length >= anonymousPerClient) list.shift();
    list.push(record);
    this.#anonymous.delete(record.client);
    this.#anonymous.set(record.client, list);
    // Oldest clients go first: a Map iterates in insertion order and each client was just moved to the end.
    for (const [client] of this.#anonymous) {
      if (this.#anonymous.size <= anonymousClients) break;
      this.#anonymous.delete(client);
    }
  }

  async sessions(machineRef: string, cursor?: string, limit = defaultPageSize): Promise<PageResult<BootSession>> {
    const machine = await resolveMachine(this.#tx.db, machineRef);
    return finishPage(await sessionRows(this.#tx.db, machine.id, cursor, limit), limit, (r) => [r.started_at, r.id], sessionFromRow);
  }

  async session(id: string): Promise<BootSessionDetail> {
    const row = await findSessionRow(this.#tx.db, id);
    if (!row) throw new MusterError('not_found', `No boot session ${id}`);
    const requests = await sessionRequests(this.#tx.db, id);
    return {
      ...sessionFromRow(row),
      timeline: requests.map((r) => ({
        at: r.at,
        door: r.door as BootDoor,
        path: r.path,
        status: r.status as BootRequest['status'],
        bytes: Number(r.bytes),
        duration_ms: r.duration_ms,
        error: r.error,
        count: r.count,
        last_at: r.last_at ?? r.at,
      })),
    };
  }
}
