import { jobStates, machineStates } from '@muster/contract';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { RenderStats } from '../templates/pool.ts';

export interface MetricSources {
  version: string;
  machinesByState(): Promise<Record<string, number>>;
  jobsByState(): Promise<Record<string, number>>;
  /** The render threads' queue and counts (platform/templates). */
  renders(): RenderStats;
}

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  enrollments: Counter<'result'>;
  jobsFinished: Counter<'type' | 'result'>;
  tftpTransfers: Counter<'outcome'>;
  tftpBytes: Counter;
  bootRequests: Counter<'door' | 'outcome'>;
  artifactBytes: Counter;
}

// prom-client also reports active handles, requests and resources as gauges named *_total, a suffix the
// exposition format keeps for counters (promtool refuses them); the same figures stay without the suffix.
const misnamedDefaults = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** One registry per server: request latency, enrollments, and machines and jobs counted at scrape time. */
export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry();
  // The standard process_* and nodejs_* names, which stock Node.js dashboards expect.
  collectDefaultMetrics({ register: registry });
  for (const name of misnamedDefaults) registry.removeSingleMetric(name);
  new Gauge({
    name: 'muster_build_info',
    help: 'Always 1; the labels say which muster and which Node.js run',
    labelNames: ['version', 'node'] as const,
    registers: [registry],
  }).set({ version: sources.version, node: process.versions.node }, 1);
  const httpDuration = new Histogram({
    name: 'muster_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const enrollments = new Counter({
    name: 'muster_enrollments_total',
    help: 'Enrollments by result (created, updated, conflict, rejected)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const jobsFinished = new Counter({
    name: 'muster_jobs_finished_total',
    help: 'Jobs finished by type and result',
    labelNames: ['type', 'result'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'muster_machines',
    help: 'Machines by lifecycle state',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const counts = await sources.machinesByState();
      for (const state of machineStates) this.set({ state }, counts[state] ?? 0);
    },
  });
  new Gauge({
    name: 'muster_jobs',
    help: 'Jobs by state',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const counts = await sources.jobsByState();
      for (const state of jobStates) this.set({ state }, counts[state] ?? 0);
    },
  });
  const tftpTransfers = new Counter({
    name: 'muster_tftp_transfers_total',
    help: 'TFTP transfers the resolver answered, by how they ended (complete, aborted, timeout, error)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const tftpBytes = new Counter({ name: 'muster_tftp_sent_bytes_total', help: 'Bytes of file data sent over TFTP', registers: [registry] });
  const bootRequests = new Counter({
    name: 'muster_boot_requests_total',
    help: 'Boot requests of machines, by door (pi, ipxe, tftp, http) and outcome',
    labelNames: ['door', 'outcome'] as const,
    registers: [registry],
  });
  const artifactBytes = new Counter({
    name: 'muster_artifact_sent_bytes_total',
    help: 'Bytes of artifacts sent over HTTP',
    registers: [registry],
  });
  renderMetrics(registry, sources.renders);
  return { registry, httpDuration, enrollments, jobsFinished, tftpTransfers, tftpBytes, bootRequests, artifactBytes };
}

/** The render threads, read at scrape time: what waits and runs, and how renders ended. */
function renderMetrics(registry: Registry, renders: () => RenderStats): void {
  new Gauge({
    name: 'muster_template_renders_pending',
    help: 'Template renders now, waiting for a render thread (queued) or running on one (running)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const stats = renders();
      this.set({ state: 'queued' }, stats.queued);
      this.set({ state: 'running' }, stats.running);
    },
  });
  new Counter({
    name: 'muster_template_renders_total',
    help: 'Template renders by outcome: rendered, failed (template error), timeout (ended at the time limit), refused (queue full)',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect() {
      const stats = renders();
      this.reset();
      this.inc({ outcome: 'rendered' }, stats.rendered);
      this.inc({ outcome: 'failed' }, stats.failed);
      this.inc({ outcome: 'timeout' }, stats.timedOut);
      this.inc({ outcome: 'refused' }, stats.refused);
    },
  });
}
