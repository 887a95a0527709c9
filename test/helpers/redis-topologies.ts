/**
 * Disposable Redis Sentinel and Redis Cluster deployments for integration tests (SPEC section 2:
 * REDIS_SENTINELS / REDIS_SENTINEL_NAME and REDIS_CLUSTER_NODES).
 *
 * Same rules as services.ts: private processes on free 127.0.0.1 ports with their own temp dirs,
 * spawned and stopped by PID in the caller's teardown (plus a last-resort kill on process exit),
 * and one clear error line instead of a skip when the binaries are missing.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { askRedisOnce, findExecutable, freePort, logTail, onProcessExit, sleep } from './services.js';

const execFileAsync = promisify(execFile);
const READY_TIMEOUT_MS = 15_000;
/** Failover and cluster convergence are polled, never timed: this is only the give-up point. */
const CONVERGE_TIMEOUT_MS = 30_000;
export const SENTINEL_MASTER_NAME = 'mymaster';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface SentinelSetup {
  /** `host:port` of the sentinel, the REDIS_SENTINELS value. */
  sentinels: string;
  /** The monitored master's name, the REDIS_SENTINEL_NAME value. */
  name: string;
  masterPort: number;
  replicaPort: number;
  sentinelPort: number;
  /** Kills the current master process (by PID) to provoke a failover. */
  stopMaster(): Promise<void>;
  /** Polls the sentinel until it names a master other than `masterPort`; returns the new port. */
  waitForFailover(): Promise<number>;
}

export interface ClusterSetup {
  /** `host:port,host:port,host:port`, the REDIS_CLUSTER_NODES value (the masters as created). */
  nodes: string;
  /** The masters as created. */
  ports: number[];
  /** Every node, replicas included. */
  allPorts: number[];
  /** One command to one node (signing in, over TLS when the cluster has them); null when it does not answer. */
  ask(port: number, command: string, ...args: string[]): Promise<unknown>;
  /** Kills one node (by PID, SIGKILL: a lost machine, no goodbye). */
  killNode(port: number): Promise<void>;
  /**
   * Polls until another node serves the slots `port` served and every surviving node says
   * cluster_state:ok; returns the port of the promoted node.
   */
  waitForFailover(port: number): Promise<number>;
}

export interface ClusterOptions {
  password?: string;
  /** TLS only (no plain port), on the cluster bus and replication too; PEM files. */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** Replicas per master (0: three masters alone). */
  replicas?: number;
}

/** `count` distinct free ports (distinct even if the OS hands one out twice in a row). */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function requireExecutable(name: string): string {
  const bin = findExecutable(name, ['/usr/bin', '/usr/sbin', '/usr/local/bin']);
  if (!bin) throw new Error(`test setup: ${name} not found on PATH (install Debian package redis-server; it brings redis-cli via redis-tools)`);
  return bin;
}

function isAlive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** One command over a short-lived connection; null when the server does not answer (yet). */
function ask(port: number, command: string, ...args: string[]): Promise<unknown> {
  return askRedisOnce({ port }, command, ...args);
}

/** `ask` signing in first when the server has a `requirepass`. */
function askAs(password: string | undefined, port: number, command: string, ...args: string[]): Promise<unknown> {
  return password === undefined ? ask(port, command, ...args) : askRedisOnce(`redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`, command, ...args);
}

/** Polls `probe` until it is truthy; throws `what` (with a log tail) at the deadline. */
async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, logFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(100);
  }
  const tail = logFile ? `\n${await logTail(logFile)}` : '';
  throw new Error(`test setup: ${what} within ${timeoutMs} ms${tail}`);
}

/**
 * One redis-server (or sentinel) process, started by spawn and stopped by its PID. All of one
 * deployment's processes are registered with the exit hook and the teardown via `Processes`.
 */
class RedisProcess {
  child: ChildProcess | undefined;

  constructor(
    readonly label: string,
    readonly port: number,
    readonly logFile: string,
    private readonly bin: string,
    private readonly args: string[],
    private readonly password?: string,
    private readonly tlsCa: string | null = null,
  ) {}

  async start(): Promise<void> {
    this.child = spawn(this.bin, this.args, { stdio: 'ignore' });
    const child = this.child;
    child.unref(); // a forgotten stop must not keep the test process alive; the exit hook kills it
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline && isAlive(child)) {
      const pong = this.tlsCa === null ? await askAs(this.password, this.port, 'PING') : await askTls(this.tlsCa, this.password, this.port, 'PING');
      if (pong === 'PONG') return;
      await sleep(100);
    }
    const why = isAlive(child) ? `no PONG within ${READY_TIMEOUT_MS} ms` : 'process exited';
    await this.stop();
    throw new Error(`test setup: ${this.label} on port ${this.port} did not start (${why}):\n${await logTail(this.logFile)}`);
  }

  /** SIGTERM by PID, SIGKILL after 5 s; resolves once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !isAlive(child) || child.pid === undefined) return;
    const pid = child.pid;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.ref();
    process.kill(pid, signal);
    const timer = setTimeout(() => isAlive(child) && process.kill(pid, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  killNow(): void {
    const child = this.child;
    if (child && isAlive(child) && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }
}

/** Registers processes and their temp dir for teardown (by PID) and for a last-resort exit kill. */
function track(t: Teardown, dir: string): RedisProcess[] {
  const processes: RedisProcess[] = [];
  const onExit = () => {
    processes.forEach((p) => p.killNow());
    rmSync(dir, { recursive: true, force: true });
  };
  // Last resort: processes must not outlive the test process, even when tap kills it on timeout.
  const unregister = onProcessExit(onExit);
  t.teardown(async () => {
    // Sentinel (started last) first, so it does not react to the data nodes going away.
    for (const p of [...processes].reverse()) await p.stop();
    unregister();
    rmSync(dir, { recursive: true, force: true });
  });
  return processes;
}

const baseArgs = (port: number, dir: string, logFile: string) => [
  '--save',
  '',
  '--appendonly',
  'no',
  '--bind',
  '127.0.0.1',
  '--port',
  String(port),
  '--dir',
  dir,
  '--logfile',
  logFile,
  '--daemonize',
  'no',
];

const infoField = (info: unknown, field: string): string | undefined =>
  typeof info === 'string' ? new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim() : undefined;

// ---------------------------------------------------------------------------
// Sentinel: one master, one replica, one sentinel (quorum 1)
// ---------------------------------------------------------------------------

/** Passwords for a managed-Redis-like setup: `requirepass` on the data nodes and on the sentinel. */
export interface SentinelAuth {
  password?: string;
  sentinelPassword?: string;
}

export async function startSentinelSetup(t: Teardown, auth: SentinelAuth = {}): Promise<SentinelSetup> {
  const bin = requireExecutable('redis-server');
  const { password, sentinelPassword } = auth;
  const dataAuthArgs = password === undefined ? [] : ['--requirepass', password, '--masterauth', password];
  const ask = (port: number, command: string, ...args: string[]) => askAs(port === sentinelPort ? sentinelPassword : password, port, command, ...args);
  const dir = await mkdtemp(join(tmpdir(), 'sgw-sentinel-'));
  const processes = track(t, dir);
  const [masterPort, replicaPort, sentinelPort] = (await freePorts(3)) as [number, number, number];

  const master = new RedisProcess('redis master', masterPort, join(dir, 'master.log'), bin, [...baseArgs(masterPort, dir, join(dir, 'master.log')), ...dataAuthArgs], password);
  processes.push(master);
  await master.start();

  const replicaArgs = [...baseArgs(replicaPort, dir, join(dir, 'replica.log')), '--dbfilename', 'replica.rdb', '--replicaof', '127.0.0.1', String(masterPort), ...dataAuthArgs];
  const replica = new RedisProcess('redis replica', replicaPort, join(dir, 'replica.log'), bin, replicaArgs, password);
  processes.push(replica);
  await replica.start();
  await waitUntil(
    'the replica did not sync with the master',
    async () => infoField(await ask(replicaPort, 'INFO', 'replication'), 'master_link_status') === 'up',
    READY_TIMEOUT_MS,
    replica.logFile,
  );

  // Sentinel rewrites its config file, so it must be a writable file of its own.
  const configFile = join(dir, 'sentinel.conf');
  const sentinelLog = join(dir, 'sentinel.log');
  await writeFile(
    configFile,
    [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `logfile ${sentinelLog}`,
      `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} 1000`,
      `sentinel failover-timeout ${SENTINEL_MASTER_NAME} 5000`,
      `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
      ...(password === undefined ? [] : [`sentinel auth-pass ${SENTINEL_MASTER_NAME} ${password}`]),
      ...(sentinelPassword === undefined ? [] : [`requirepass ${sentinelPassword}`]),
      '',
    ].join('\n'),
  );
  const sentinel = new RedisProcess('redis sentinel', sentinelPort, sentinelLog, bin, [configFile, '--sentinel'], sentinelPassword);
  processes.push(sentinel);
  await sentinel.start();
  // A failover needs a replica the sentinel knows about; it learns of it from the master's INFO.
  await waitUntil(
    'the sentinel did not discover the replica',
    async () => {
      const replicas = await ask(sentinelPort, 'SENTINEL', 'REPLICAS', SENTINEL_MASTER_NAME);
      return Array.isArray(replicas) && replicas.some((r) => Array.isArray(r) && r.includes(String(replicaPort)) && !String(r[r.indexOf('flags') + 1]).includes('down'));
    },
    CONVERGE_TIMEOUT_MS,
    sentinelLog,
  );

  const currentMaster = async (): Promise<number | null> => {
    const reply = await ask(sentinelPort, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME);
    return Array.isArray(reply) ? Number(reply[1]) : null;
  };

  return {
    sentinels: `127.0.0.1:${sentinelPort}`,
    name: SENTINEL_MASTER_NAME,
    masterPort,
    replicaPort,
    sentinelPort,
    stopMaster: () => master.stop('SIGKILL'),
    async waitForFailover() {
      let promoted = 0;
      await waitUntil(
        'the sentinel did not fail over to the replica',
        async () => {
          const port = await currentMaster();
          if (port === null || port === masterPort) return false;
          // Promoted means the new master says so itself, not only the sentinel.
          if (infoField(await ask(port, 'INFO', 'replication'), 'role') !== 'master') return false;
          promoted = port;
          return true;
        },
        CONVERGE_TIMEOUT_MS,
        sentinelLog,
      );
      return promoted;
    },
  };
}

// ---------------------------------------------------------------------------
// Cluster: three masters, no replicas
// ---------------------------------------------------------------------------

export async function startCluster(t: Teardown, options: ClusterOptions = {}): Promise<ClusterSetup> {
  const bin = requireExecutable('redis-server');
  const cli = requireExecutable('redis-cli');
  const { password, tls } = options;
  const tlsCa = tls ? await readFile(tls.caFile, 'utf8') : null;
  const ask = (port: number, command: string, ...args: string[]) =>
    tlsCa === null ? askAs(password, port, command, ...args) : askTls(tlsCa, password, port, command, ...args);
  const dir = await mkdtemp(join(tmpdir(), 'sgw-cluster-'));
  const processes = track(t, dir);
  const count = 3 * (1 + (options.replicas ?? 0));
  // Each node needs a client port and a cluster bus port; the bus port is given explicitly
  // (cluster-port) because the default, port + 10000, may be taken or beyond 65535.
  const freshPorts = await freePorts(2 * count);
  const allPorts = freshPorts.slice(0, count);
  const tlsArgs = (port: number) =>
    tls
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no', '--tls-cluster', 'yes', '--tls-replication', 'yes']
      : [];
  const nodes = allPorts.map((port, i) => {
    const logFile = join(dir, `node${i}.log`);
    const args = [
      ...baseArgs(port, dir, logFile),
      ...tlsArgs(port),
      '--dbfilename',
      `node${i}.rdb`,
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, `nodes-${i}.conf`),
      '--cluster-node-timeout',
      '2000',
      '--cluster-port',
      String(freshPorts[count + i]),
      ...(password === undefined ? [] : ['--requirepass', password, '--masterauth', password]),
    ];
    return new RedisProcess(`redis cluster node ${i}`, port, logFile, bin, args, password, tlsCa);
  });
  processes.push(...nodes);
  await Promise.all(nodes.map((n) => n.start()));

  try {
    const cliAuth = password === undefined ? [] : ['-a', password, '--no-auth-warning'];
    const cliTls = tls ? ['--tls', '--cacert', tls.caFile] : [];
    // redis-cli makes the first three nodes masters and gives each `replicas` of the others.
    await execFileAsync(cli, [...cliAuth, ...cliTls, '--cluster', 'create', ...allPorts.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(options.replicas ?? 0), '--cluster-yes'], {
      timeout: CONVERGE_TIMEOUT_MS,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`test setup: redis-cli --cluster create failed: ${(e.stderr || e.stdout || e.message).trim()}`);
  }
  for (const node of nodes) {
    await waitUntil(
      `cluster node on port ${node.port} did not reach cluster_state:ok`,
      async () => infoField(await ask(node.port, 'CLUSTER', 'INFO'), 'cluster_state') === 'ok',
      CONVERGE_TIMEOUT_MS,
      node.logFile,
    );
  }
  /** Which node serves how many of the 16384 slots: port → slot count, from a node's CLUSTER SLOTS. */
  const slotOwners = async (via: number): Promise<Map<number, number> | null> => {
    const reply = await ask(via, 'CLUSTER', 'SLOTS');
    if (!Array.isArray(reply)) return null;
    const owners = new Map<number, number>();
    for (const range of reply as unknown[][]) {
      const [from, to, master] = range as [number, number, unknown[]];
      const owner = Number(master[1]);
      owners.set(owner, (owners.get(owner) ?? 0) + to - from + 1);
    }
    return owners;
  };
  // redis-cli chose the masters; the rest are their replicas.
  const ports = [...((await slotOwners(allPorts[0] as number)) ?? new Map<number, number>()).keys()].sort((x, y) => x - y);
  if (ports.length !== 3) throw new Error(`test setup: expected 3 masters, CLUSTER SLOTS names ${ports.length}`);
  // A failover promotes a replica only once it has the data: wait until each one is in sync.
  for (const node of nodes.filter((n) => !ports.includes(n.port))) {
    await waitUntil(
      `cluster replica on port ${node.port} did not sync with its master`,
      async () => infoField(await ask(node.port, 'INFO', 'replication'), 'master_link_status') === 'up',
      CONVERGE_TIMEOUT_MS,
      node.logFile,
    );
  }

  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
    ports,
    allPorts,
    ask,
    async killNode(port) {
      await nodes.find((n) => n.port === port)?.stop('SIGKILL');
    },
    async waitForFailover(port) {
      const survivors = nodes.filter((n) => n.port !== port);
      let promoted = 0;
      await waitUntil(
        `no node took over the slots of the node on port ${port}`,
        async () => {
          for (const node of survivors) if (infoField(await ask(node.port, 'CLUSTER', 'INFO'), 'cluster_state') !== 'ok') return false;
          const owners = await slotOwners(survivors[0]?.port ?? 0);
          if (!owners || owners.has(port)) return false;
          const total = [...owners.values()].reduce((sum, n) => sum + n, 0);
          if (total !== 16_384) return false;
          // The promoted node: a former replica now serving slots.
          promoted = [...owners.keys()].find((p) => !ports.includes(p)) ?? 0;
          return promoted !== 0;
        },
        CONVERGE_TIMEOUT_MS,
        survivors[0]?.logFile,
      );
      return promoted;
    },
  };
}

/** `ask` over TLS (the cluster's own CA), signing in first when there is a password. */
async function askTls(ca: string, password: string | undefined, port: number, command: string, ...args: string[]): Promise<unknown> {
  const client = new Redis({ host: '127.0.0.1', port, tls: { ca }, ...(password === undefined ? {} : { password }), lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.call(command, ...args);
  } catch {
    return null;
  } finally {
    client.disconnect();
  }
}
