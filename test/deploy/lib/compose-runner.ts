// Runs services of deploy/docker-compose.yml with podman, one `podman run` per service, for the
// container tests. Debian's podman-compose (1.0.3) cannot run this file as written: it passes
// `network_mode: service:…` to podman verbatim (podman spells it `container:…`) next to a second
// --net, and it ignores `condition: service_healthy`. This runner implements exactly the keys the
// file uses, with compose's meaning, and refuses any other key so a new one is not silently dropped.
import { posix, resolve } from 'node:path';
import { containerState, eventually, podman, qualified } from '../../helpers/containers.js';

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number | boolean | null>;
  volumes?: string[];
  ports?: string[];
  network_mode?: string;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number };
  stop_grace_period?: string;
  restart?: string;
}

const KNOWN_KEYS = new Set(['image', 'build', 'command', 'environment', 'volumes', 'ports', 'network_mode', 'depends_on', 'healthcheck', 'stop_grace_period', 'restart']);

/** Compose interpolation: `$$` is a literal `$`; the file uses no host variables. */
export function interpolate(value: string): string {
  if (/(^|[^$])\$(\{|[A-Za-z_])/.test(value.replace(/\$\$/g, ''))) throw new Error(`unexpected variable interpolation in ${value}`);
  return value.replace(/\$\$/g, '$');
}

const seconds = (duration: string) => {
  const m = /^(\d+)(s|m)$/.exec(duration);
  if (!m) throw new Error(`unsupported duration ${duration}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
};

function dependencies(service: ComposeService): Array<[string, string]> {
  const deps = service.depends_on ?? [];
  return Array.isArray(deps) ? deps.map((d) => [d, 'service_started']) : Object.entries(deps).map(([d, v]) => [d, v.condition ?? 'service_started']);
}

export interface ComposeRun {
  services: Record<string, ComposeService>;
  /** Services to start (their dependencies must be among them). */
  only: string[];
  /** Directory the file's relative paths are relative to. */
  projectDir: string;
  /** Prefix of container names and the name of the network. */
  prefix: string;
  /** Image used for services that have `build:` (built beforehand from the same Dockerfile). */
  builtImage: string;
}

export const containerName = (run: Pick<ComposeRun, 'prefix'>, service: string) => `${run.prefix}-${service}`;

/** podman run arguments for one service, as compose would create its container. */
export function runArguments(run: ComposeRun, name: string): string[] {
  const service = run.services[name];
  if (!service) throw new Error(`no service ${name}`);
  const unknown = Object.keys(service).filter((k) => !KNOWN_KEYS.has(k));
  if (unknown.length) throw new Error(`${name}: compose keys this runner does not implement: ${unknown.join(', ')}`);
  const args = ['run', '--detach', '--name', containerName(run, name)];
  if (service.network_mode) {
    const target = /^service:(.+)$/.exec(service.network_mode)?.[1];
    if (!target) throw new Error(`${name}: unsupported network_mode ${service.network_mode}`);
    args.push('--network', `container:${containerName(run, target)}`);
  } else {
    args.push('--network', run.prefix, '--network-alias', name);
  }
  for (const port of service.ports ?? []) {
    if (!port.startsWith('127.0.0.1:')) throw new Error(`${name} publishes ${port} beyond loopback`);
    args.push('--publish', port);
  }
  for (const [key, value] of Object.entries(service.environment ?? {})) args.push('--env', `${key}=${interpolate(String(value ?? ''))}`);
  for (const volume of service.volumes ?? []) {
    const [source = '', target = '', mode] = volume.split(':');
    if (!source.startsWith('.')) throw new Error(`${name}: only bind mounts of the repository's files are expected, got ${volume}`);
    args.push('--volume', [resolve(run.projectDir, source), posix.normalize(target), ...(mode ? [mode] : [])].join(':'));
  }
  if (service.healthcheck) {
    const [kind, ...command] = service.healthcheck.test;
    if (kind !== 'CMD') throw new Error(`${name}: healthcheck ${kind} not implemented`);
    args.push('--health-cmd', JSON.stringify(command));
    if (service.healthcheck.interval) args.push('--health-interval', service.healthcheck.interval);
    if (service.healthcheck.timeout) args.push('--health-timeout', service.healthcheck.timeout);
    if (service.healthcheck.retries) args.push('--health-retries', String(service.healthcheck.retries));
  }
  if (service.stop_grace_period) args.push('--stop-timeout', String(seconds(service.stop_grace_period)));
  if (service.restart) args.push('--restart', service.restart);
  const image = service.build ? run.builtImage : service.image ? qualified(service.image) : undefined;
  if (!image) throw new Error(`${name}: neither image nor build`);
  args.push(image, ...(service.command ?? []));
  return args;
}

/** Waits until a container's healthcheck passes (podman runs it on demand: no systemd timers here). */
export async function waitHealthy(container: string, timeoutMs = 120_000): Promise<void> {
  await eventually(`${container} healthy`, async () => {
    const state = await containerState(container);
    if (state.Status === 'exited') throw new Error(`${container} exited (${state.ExitCode})`);
    return (await podman(['healthcheck', 'run', container]).then(() => true, () => false)) ? true : undefined;
  }, timeoutMs);
}

/** Starts the services in dependency order, honouring `condition: service_healthy`. */
export async function composeUp(run: ComposeRun): Promise<void> {
  const started = new Set<string>();
  const start = async (name: string, path: string[] = []): Promise<void> => {
    if (started.has(name)) return;
    if (path.includes(name)) throw new Error(`dependency cycle: ${[...path, name].join(' → ')}`);
    if (!run.only.includes(name)) throw new Error(`${path.at(-1)} depends on ${name}, which is not started`);
    for (const [dep, condition] of dependencies(run.services[name] ?? {})) {
      await start(dep, [...path, name]);
      if (condition === 'service_healthy') await waitHealthy(containerName(run, dep));
    }
    await podman(runArguments(run, name), 120_000);
    started.add(name);
  };
  await podman(['network', 'exists', run.prefix]).catch(() => podman(['network', 'create', run.prefix]));
  for (const name of run.only) await start(name);
}
