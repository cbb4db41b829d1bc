import { jobStates, machineStates } from '@muster/contract';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface MetricSources {
  machinesByState(): Promise<Record<string, number>>;
  jobsByState(): Promise<Record<string, number>>;
}

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  enrollments: Counter<'result'>;
  jobsFinished: Counter<'type' | 'result'>;
}

/** One registry per server: request latency, enrollments, and machines and jobs counted at scrape time. */
export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'muster_process_' });
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
  return { registry, httpDuration, enrollments, jobsFinished };
}
