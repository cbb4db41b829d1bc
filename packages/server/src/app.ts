import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { MusterError } from '@muster/contract';
import type { FastifyBaseLogger } from 'fastify';
import { BootDiscovery } from './boot/core/resolve.ts';
import { ArtifactUrlSigner } from './boot/core/signing.ts';
import { BootTimeline } from './boot/core/timeline.ts';
import { IpxeService } from './boot/ipxe/answer.ts';
import { bootArtifactRoutes, ipxeRoutes } from './boot/ipxe/routes.ts';
import { BootScriptService } from './boot/ipxe/scripts.ts';
import { PiBoot } from './boot/pi/door.ts';
import { piBootRoutes } from './boot/pi/routes.ts';
import { bootRoutes } from './boot/routes.ts';
import { TftpServer } from './boot/tftp/server.ts';
import { TftpDoor } from './boot/tftp-door.ts';
import { type Config, isLoopbackOnly } from './config/load.ts';
import { artifactRoutes } from './modules/artifacts/routes.ts';
import { ArtifactService } from './modules/artifacts/service.ts';
import { JwtSigner } from './modules/auth/jwt.ts';
import { authRoutes } from './modules/auth/routes.ts';
import { AuthService, localPrincipal } from './modules/auth/service.ts';
import { buildHandler } from './modules/builds/builder.ts';
import { buildRoutes } from './modules/builds/routes.ts';
import { BuildService } from './modules/builds/service.ts';
import { bulkRoutes } from './modules/bulk/routes.ts';
import { BulkService } from './modules/bulk/service.ts';
import { CaPolicyService } from './modules/ca/policy-service.ts';
import { caRoutes } from './modules/ca/routes.ts';
import { CaService } from './modules/ca/service.ts';
import { claimRoutes } from './modules/claims/routes.ts';
import { ClaimService } from './modules/claims/service.ts';
import { deviceSelf } from './modules/device/self.ts';
import { endpointRoutes } from './modules/endpoints/routes.ts';
import { EndpointService } from './modules/endpoints/service.ts';
import { defaultFactsBound } from './modules/enroll/facts.ts';
import { enrollRoutes } from './modules/enroll/routes.ts';
import { EnrollService } from './modules/enroll/service.ts';
import { enrollmentTokenRoutes } from './modules/enrollment-tokens/routes.ts';
import { EnrollmentService } from './modules/enrollment-tokens/service.ts';
import { eventRoutes } from './modules/events/routes.ts';
import { EventService } from './modules/events/service.ts';
import { fleetRoutes } from './modules/fleets/routes.ts';
import { FleetService } from './modules/fleets/service.ts';
import { groupRoutes } from './modules/groups/routes.ts';
import { GroupService } from './modules/groups/service.ts';
import { jobRoutes } from './modules/jobs/routes.ts';
import { JobService } from './modules/jobs/service.ts';
import { machineRoutes } from './modules/machines/routes.ts';
import { MachineService } from './modules/machines/service.ts';
import { countMachinesByState, findMachineRow } from './modules/machines/store.ts';
import { piRoutes } from './modules/pi/routes.ts';
import { PiService } from './modules/pi/service.ts';
import { poolRoutes } from './modules/pools/routes.ts';
import { PoolService } from './modules/pools/service.ts';
import { ExplainService } from './modules/profiles/explain.ts';
import { certificatePolicyOf } from './modules/profiles/machine.ts';
import { explainRoutes, profileRoutes } from './modules/profiles/routes.ts';
import { ProfileService } from './modules/profiles/service.ts';
import { ruleRoutes } from './modules/rules/routes.ts';
import { RuleService } from './modules/rules/service.ts';
import { stageRoutes } from './modules/stage/routes.ts';
import { StageService } from './modules/stage/service.ts';
import { systemRoutes } from './modules/system/routes.ts';
import { tokenRoutes } from './modules/tokens/routes.ts';
import { TokenService } from './modules/tokens/service.ts';
import { userRoutes } from './modules/users/routes.ts';
import { UserService } from './modules/users/service.ts';
import { type Keyring, KeyringError } from './platform/crypto/keyring.ts';
import { randomCode } from './platform/crypto/secrets.ts';
import { type Db, openDatabase, ping } from './platform/db/connect.ts';
import { EventBus } from './platform/db/event-bus.ts';
import { eventChannel } from './platform/db/event-store.ts';
import { migrateToLatest } from './platform/db/migrations.ts';
import { decodeEventPayload, PgListener } from './platform/db/pg-listener.ts';
import { RetentionTimer } from './platform/db/retention.ts';
import { generatedSecret } from './platform/db/settings.ts';
import { Transactor } from './platform/db/transact.ts';
import { loadKeyring } from './platform/files/master-key.ts';
import { privateDirectory, privateFiles } from './platform/files/private.ts';
import { createHttpServer } from './platform/http/server.ts';
import { listenTls, type TlsListener } from './platform/http/tls.ts';
import type { App } from './platform/http/types.ts';
import { JobRunner } from './platform/jobs/runner.ts';
import { jobChannel } from './platform/jobs/store.ts';
import { limitsFor } from './platform/limits/counters.ts';
import { InFlightLimiter } from './platform/limits/in-flight.ts';
import { SourceLimiter } from './platform/limits/limiter.ts';
import { DomainLog } from './platform/log/domain-log.ts';
import { createLogger } from './platform/log/logger.ts';
import { createMetrics, type Metrics } from './platform/metrics/metrics.ts';
import { holdRenderThreads, renderStats } from './platform/templates/render.ts';

export const version = '0.1.0';

export interface Muster {
  app: App;
  db: Db;
  bus: EventBus;
  runner: JobRunner;
  auth: AuthService;
  users: UserService;
  artifacts: ArtifactService;
  /** Prunes old boot requests and device events (also on its own timer once listening). */
  retention: RetentionTimer;
  /** The TFTP front door's address once listening; null when TFTP is off. */
  tftpAddress: { address: string; port: number } | null;
  /** The HTTPS listener's address once listening; null when --tls-listen is off. */
  tlsAddress: { address: string; port: number } | null;
  /** Starts listeners and the job runner; returns the HTTP base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface MusterOptions {
  /** Job retry backoff base, shortened by tests. */
  backoffBaseMs?: number;
}

/** Wires muster together: database, services, routes, job runner and (on PostgreSQL) the event listener. */
export async function createMuster(config: Config, options: MusterOptions = {}): Promise<Muster> {
  if (!config.enableAuth && !isLoopbackOnly(config.listen.host)) {
    throw new MusterError(
      'bad_request',
      `ENABLE_AUTH=false is refused while listening on ${config.listen.host}; bind to 127.0.0.1 or turn authentication on`,
    );
  }
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const keyring = openKeyring(config, log);
  const db = await openStorage(config, log);
  // Failed logins, wrong claims and new machines count where every replica sees them (docs/security.md).
  const limits = limitsFor(db, (error) => log.error({ err: error }, 'shared limit counter failed'));
  const secrets = await loadSecrets(db, keyring, config).catch(async (error) => {
    await db.close();
    throw error;
  });
  const domainLog = new DomainLog(log);
  const bus = new EventBus();
  const transactor = new Transactor(db, bus, (events) => domainLog.observe(events));
  const caReloadFailed = (error: unknown) => log.error({ err: error }, 'the imported CA was not loaded; the one before still issues');
  const caPolicy = new CaPolicyService(
    transactor,
    { validitySeconds: config.certificateValiditySeconds, publicUrl: config.publicUrl },
    bus,
  );
  const ca = await CaService.open(transactor, keyring, caPolicy, bus, caReloadFailed).catch(async (error) => {
    await db.close();
    throw error instanceof KeyringError ? new MusterError('bad_request', error.message) : error;
  });
  const users = new UserService(transactor);
  const tokens = new TokenService(transactor);
  const jwt = new JwtSigner(secrets.jwt, config.jwtExpirySeconds);
  const auth = new AuthService(transactor, jwt, tokens, users);
  const machines = new MachineService(transactor);
  const events = new EventService(transactor);
  const jobs = new JobService(transactor);
  const fleets = new FleetService(transactor);
  const groups = new GroupService(transactor, machines);
  const artifacts = new ArtifactService(transactor, { dir: config.artifactDir, maxBytes: config.artifactMaxBytes });
  let runner: JobRunner | null = null;
  const builds = new BuildService(transactor, db.dialect, config, () => runner?.wake());
  const bulk = new BulkService(transactor, machines, groups, builds);
  const rules = new RuleService(transactor, bus);
  // One budget for new machines across every anonymous door (iPXE, nixos, Pi TFTP, enroll) and every replica.
  const discoveries = limits.budget('discovery', config.discoveryPerMinute, (exceeded) => {
    app.log.warn(exceeded, 'discovery budget spent: unseen machines are not created until the next minute');
    transactor
      .run((tx) => tx.emit({ type: 'boot.discovery_throttled', actor: 'system', reason: 'discovery budget spent', data: { ...exceeded } }))
      .catch((error) => app.log.error({ err: error }, 'event not recorded'));
  });
  const discovery = new BootDiscovery(transactor, rules, {
    discoveries,
    reports: limits.budget('discovery_reports', config.discoveryPerMinute),
  });
  const bootLimiter = new SourceLimiter({ ratePerMinute: config.bootRate.perMinute, burst: config.bootRate.burst });
  const metrics = createMetrics({
    version,
    machinesByState: () => countMachinesByState(db.kysely),
    jobsByState: () => jobs.countByState(),
    renders: renderStats,
  });
  const timeline = new BootTimeline(transactor, (record) => metrics.bootRequests.inc({ door: record.door, outcome: record.status }));
  const scripts = new BootScriptService(transactor);
  const pi = new PiService(transactor, artifacts);
  const piBoot = new PiBoot(transactor, pi, (sha256) => artifacts.blobPath(sha256), discovery, { publicUrl: config.publicUrl });
  const signer = new ArtifactUrlSigner(secrets.bootUrlKey, config.artifactUrlTtlSeconds);

  const app = await createHttpServer({
    logger: log,
    metrics,
    authenticate: config.enableAuth ? (bearer) => auth.authenticate(bearer) : null,
    localPrincipal,
    version,
    trustProxy: config.trustProxy,
  });
  systemRoutes(app, metrics, { check: () => ping(db.kysely) });
  authRoutes(app, auth, limits.failures('login', config.loginRatePerMinute, 60_000), (id) => users.get(localPrincipal, id));
  userRoutes(app, users);
  tokenRoutes(app, tokens);
  enrollRoutes(
    app,
    new EnrollService(transactor, { facts: { ...defaultFactsBound, maxBytes: config.factsMaxBytes }, discoveries }, rules),
    metrics,
    new SourceLimiter({ ratePerMinute: config.enrollRatePerMinute, burst: config.enrollRatePerMinute }),
  );
  machineRoutes(app, machines);
  caRoutes(app, ca, caPolicy, {
    id: async (ref) => (await machines.get(ref)).id,
    get: (id) => machines.get(id),
    policy: (id) => certificatePolicyOf(transactor, id),
    self: (certificate) => deviceSelf(transactor, keyring, certificate),
  });
  poolRoutes(app, new PoolService(transactor));
  const wrongClaims = limits.failures('claim', config.claimFailuresPerMinute, 60_000);
  enrollmentTokenRoutes(
    app,
    new EnrollmentService(
      transactor,
      ca,
      { ...defaultFactsBound, maxBytes: config.factsMaxBytes },
      rules,
      keyring,
      config.publicUrl,
      discoveries,
    ),
    wrongClaims,
    async (ref) => (await machines.get(ref)).id,
  );
  claimRoutes(
    app,
    new ClaimService(
      transactor,
      ca,
      {
        tunnelPorts: config.tunnelPorts,
        publicUrl: config.publicUrl,
        facts: { ...defaultFactsBound, maxBytes: config.factsMaxBytes },
      },
      rules,
      keyring,
    ),
    wrongClaims,
  );
  buildRoutes(app, builds);
  fleetRoutes(app, fleets);
  groupRoutes(app, groups);
  bulkRoutes(app, bulk);
  jobRoutes(app, jobs);
  eventRoutes(app, events, bus);
  ruleRoutes(app, rules);
  profileRoutes(app, new ProfileService(transactor, caPolicy), async (ref) => (await machines.get(ref)).id);
  explainRoutes(app, new ExplainService(transactor), async (ref) => (await machines.get(ref)).id);
  const endpoints = new EndpointService(transactor, keyring);
  endpointRoutes(app, endpoints);
  stageRoutes(app, new StageService(transactor, keyring, endpoints));
  piRoutes(app, pi);
  piBootRoutes(app, piBoot);
  bootRoutes(app, timeline, scripts);
  // Answers that render an operator's template: a source waits on few at once, whichever door it uses.
  const answering = new InFlightLimiter(config.bootRenders);
  ipxeRoutes(app, new IpxeService(transactor, discovery, scripts, signer), timeline, bootLimiter, answering);
  bootArtifactRoutes(app, artifacts, signer, timeline, bootLimiter, async (id) => (await findMachineRow(db.kysely, id))?.state ?? null);
  const tftpDoor = new TftpDoor(
    piBoot,
    artifacts,
    timeline,
    (error) => app.log.error({ err: error }, 'boot timeline not recorded'),
    answering,
  );
  let tftp: TftpServer | null = null;
  let tls: TlsListener | null = null;
  artifactRoutes(app, artifacts);

  runner = new JobRunner({
    db,
    transactor,
    handlers: { build: buildHandler(config, transactor) },
    runnerId: `${hostname()}:${process.pid}:${randomCode(4)}`,
    log: app.log,
    backoffBaseMs: options.backoffBaseMs,
    onFinished: (type, result) => metrics.jobsFinished.inc({ type, result }),
  });
  const jobRunner = runner;
  const retention = new RetentionTimer(transactor, config.retention, (error) => app.log.error({ err: error }, 'retention prune failed'));

  const listener = eventListener(db, app.log, bus, events, jobRunner);
  const renderThreads = holdRenderThreads(config.render);

  const startTftp = async (port: number) => {
    tftp = tftpServer(config, port, tftpDoor, metrics, app.log);
    const address = await tftp.start();
    app.log.info({ address: `${address.address}:${address.port}`, singlePort: config.tftp?.singlePort }, 'TFTP listening');
    return address;
  };

  const muster: Muster = {
    app,
    db,
    bus,
    runner: jobRunner,
    auth,
    users,
    artifacts,
    retention,
    tftpAddress: null,
    tlsAddress: null,
    async listen() {
      await listener?.start();
      await jobRunner.start();
      const url = await app.listen({ host: config.listen.host, port: config.listen.port });
      retention.start();
      if (config.tls) {
        const trusted = new Set(ca.chain);
        const listening = await listenTls(app, {
          host: config.tls.host,
          port: config.tls.port,
          ca: [...trusted],
          ...tlsIdentity(config, ca),
        });
        tls = listening;
        // Until a restart the listener trusts the CA it started with and every one imported since: devices with
        // certificates of either reach the device routes (docs/identity.md).
        ca.onChange(() => {
          for (const pem of ca.chain) trusted.add(pem);
          listening.trust([...trusted]);
        });
      }
      muster.tlsAddress = tls?.address ?? null;
      if (config.tftp) {
        try {
          muster.tftpAddress = await startTftp(config.tftp.port);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (config.tftp.fallback === null || (code !== 'EACCES' && code !== 'EADDRINUSE')) throw error;
          app.log.warn(
            `TFTP port ${config.tftp.port} is ${code === 'EACCES' ? 'not permitted' : 'taken'}; serving TFTP on ${config.tftp.fallback} (set --tftp-listen)`,
          );
          muster.tftpAddress = await startTftp(config.tftp.fallback);
        }
      }
      return url;
    },
    async close() {
      await (tftp as TftpServer | null)?.stop();
      await tls?.close();
      await retention.stop();
      await app.close();
      await app.handlersDone(5_000);
      await jobRunner.stop();
      await renderThreads.release();
      domainLog.stop();
      await listener?.stop();
      await limits.close();
      await db.close();
    },
  };
  return muster;
}

/** The data directory and database, private to this user, opened and migrated. */
/** The HTTPS listener's certificate and key: the files given, else a certificate from muster's CA made now. */
function tlsIdentity(config: Config, ca: CaService): { cert: string; key: string } {
  const tls = config.tls as NonNullable<Config['tls']>;
  if (tls.certFile && tls.keyFile) {
    try {
      return { cert: readFileSync(tls.certFile, 'utf8'), key: readFileSync(tls.keyFile, 'utf8') };
    } catch (error) {
      throw new MusterError('bad_request', `cannot read the TLS certificate or key: ${(error as Error).message}`);
    }
  }
  const dnsNames = ['localhost', hostname()];
  const ipAddresses = ['127.0.0.1', '::1'];
  for (const host of [tls.host, new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, '')]) {
    if (isIP(host) && host !== '0.0.0.0' && host !== '::') ipAddresses.push(host);
    else if (!isIP(host) && /^[A-Za-z0-9.-]+$/.test(host)) dnsNames.push(host);
  }
  const made = ca.serverCertificate({ dnsNames: [...new Set(dnsNames)], ipAddresses: [...new Set(ipAddresses)] });
  // The chain goes with it, so that a client trusting only the root of an imported intermediate verifies it.
  return { cert: [made.certificatePem, ...ca.chain].join(''), key: made.keyPem };
}

/** The master keys (docs/secrets.md): from MUSTER_MASTER_KEY, else the key file, made once when missing. */
function openKeyring(config: Config, log: FastifyBaseLogger): Keyring {
  try {
    const loaded = loadKeyring({ env: config.masterKey, file: config.masterKeyFile });
    if (loaded.created)
      log.info({ file: loaded.origin, key: loaded.keyring.currentId }, 'master key file created: back it up with the database');
    if (loaded.loosened) log.info(loaded.loosened, 'made private (it was readable by others)');
    return loaded.keyring;
  } catch (error) {
    throw error instanceof KeyringError ? new MusterError('bad_request', error.message) : error;
  }
}

/** The secrets every replica shares, sealed in the database: the session signing key and the boot URL key. */
async function loadSecrets(db: Db, keyring: Keyring, config: Config): Promise<{ jwt: string; bootUrlKey: string }> {
  try {
    return {
      jwt: config.jwtSecret ?? (await generatedSecret(db.kysely, keyring, 'jwt_secret')),
      bootUrlKey: await generatedSecret(db.kysely, keyring, 'boot_url_key'),
    };
  } catch (error) {
    throw error instanceof KeyringError ? new MusterError('bad_request', error.message) : error;
  }
}

async function openStorage(config: Config, log: FastifyBaseLogger): Promise<Db> {
  const loosened = [privateDirectory(config.dataDir)];
  if (config.database.dialect === 'sqlite') {
    const path = config.database.path;
    loosened.push(...privateFiles(path, `${path}-wal`, `${path}-shm`));
  }
  for (const was of loosened) if (was) log.info(was, 'made private (it was readable by others)');
  const db = openDatabase(config.database, { poolSize: config.dbPoolSize, sync: config.sqliteSync });
  try {
    await migrateToLatest(db.kysely, db.dialect);
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

/** On PostgreSQL, what other replicas commit: their events onto this bus, and new jobs for this runner. */
function eventListener(db: Db, log: FastifyBaseLogger, bus: EventBus, events: EventService, runner: JobRunner): PgListener | null {
  if (db.target.dialect !== 'postgres') return null;
  return new PgListener({
    url: db.target.url,
    log,
    channels: {
      [eventChannel]: (payload) => {
        const decoded = decodeEventPayload(payload);
        if ('type' in decoded) bus.publish(decoded);
        else void events.byId(decoded.id).then((event) => event && bus.publish(event));
      },
      [jobChannel]: () => runner.wake(),
    },
  });
}

/** The TFTP front door's server on `port`, with its settings, metrics and logging. */
function tftpServer(config: Config, port: number, door: TftpDoor, metrics: Metrics, log: FastifyBaseLogger): TftpServer {
  const settings = config.tftp as NonNullable<Config['tftp']>;
  return new TftpServer({
    host: settings.host,
    port,
    singlePort: settings.singlePort,
    workers: settings.workers,
    requestRate: settings.requestRate,
    maxPerClient: settings.maxPerClient,
    maxTransfers: settings.maxTransfers,
    fileLimitMs: settings.fileLimitSeconds === null ? null : settings.fileLimitSeconds * 1000,
    resolve: door.resolve,
    onTransferEnd: (end) => {
      metrics.tftpTransfers.inc({ outcome: end.outcome });
      metrics.tftpBytes.inc(end.bytes);
      door.transferEnded(end);
    },
    onError: (error) => log.error({ err: error }, 'tftp'),
  });
}
