// The container image, checked without a Docker engine (none in CI): the Dockerfile is read
// instruction by instruction and held to what the README promises (multi-stage, production
// dependencies only, non-root, HEALTHCHECK on the admin port, STOPSIGNAL, the package's bin, no
// secrets), the .dockerignore is applied with Docker's matching rules, and the HEALTHCHECK command
// itself is run against a real gateway.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config/config.js';
import { startTestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/services.js';
import { all, assignments, copyPaths, parseDockerfile, type Stage } from './lib/dockerfile.js';
import { isIgnored, parseDockerignore } from './lib/dockerignore.js';

const root = new URL('../../', import.meta.url);
const dockerfile = parseDockerfile(readFileSync(new URL('Dockerfile', root), 'utf8'));
const ignore = parseDockerignore(readFileSync(new URL('.dockerignore', root), 'utf8'));
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  bin: Record<string, string>;
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

const final = dockerfile.stages.at(-1) as Stage;
const stageNamed = (name: string) => dockerfile.stages.find((s) => s.name === name);
const workdir = (stage: Stage) => all(stage, 'WORKDIR').at(-1)?.rest ?? '/';
const one = (stage: Stage, keyword: string) => {
  const found = all(stage, keyword);
  if (found.length !== 1) throw new Error(`expected one ${keyword} in stage ${stage.name}, found ${found.length}`);
  return found[0] as NonNullable<(typeof found)[0]>;
};
const adminPortDefault = loadConfig({}).adminPort;

t.test('multi-stage: a build stage compiles, the runtime stage only receives its output', async (t) => {
  t.ok(dockerfile.stages.length >= 2, 'at least two stages');
  const names = dockerfile.stages.map((s) => s.name);
  t.equal(new Set(names).size, names.length, 'stage names are unique');
  t.ok(names.every((n) => n !== null), 'every stage is named, so --from never relies on an index');
  for (const stage of dockerfile.stages) {
    t.match(stage.from, /^node:(\d+)[.-]/, `${stage.name} is based on an official node image`);
    const major = Number(/^node:(\d+)/.exec(stage.from)?.[1]);
    t.ok(major >= Number(/\d+/.exec(pkg.engines.node)?.[0]), `${stage.name}: node ${major} satisfies engines ${pkg.engines.node}`);
  }
  const builder = dockerfile.stages.find((s) => all(s, 'RUN').some((r) => /\bnpm run build\b/.test(r.rest)));
  t.ok(builder && builder !== final, 'TypeScript is compiled in a stage other than the final one');
  t.notOk(all(final, 'RUN').some((r) => /\bnpm (run build|ci|install|i)\b|\btsc\b/.test(r.rest)), 'nothing is installed or compiled in the final stage');
  for (const copy of dockerfile.stages.flatMap((s) => all(s, 'COPY'))) {
    const from = copy.flags.from;
    if (from === undefined) continue;
    const index = dockerfile.stages.findIndex((s) => s.name === from);
    t.ok(index >= 0 && dockerfile.stages.slice(0, index + 1).every((s) => !s.instructions.includes(copy)), `COPY --from=${from} (line ${copy.line}) names an earlier stage`);
  }
});

t.test('the final stage receives production dependencies only and no tests, benchmarks or sources', async (t) => {
  const copies = all(final, 'COPY').map((c) => ({ c, ...copyPaths(c) }));
  const fromContext = copies.filter(({ c }) => c.flags.from === undefined).flatMap(({ sources }) => sources);
  t.same(fromContext.sort(), ['package.json'], 'from the build context only package.json (for "type": "module")');
  t.notOk(all(final, 'ADD').length, 'no ADD (it would fetch URLs and unpack archives)');

  const modulesCopy = copies.find(({ sources }) => sources.some((s) => /(^|\/)node_modules\/?$/.test(s)));
  t.ok(modulesCopy, 'node_modules comes from another stage');
  const depsStage = stageNamed(modulesCopy?.c.flags.from ?? '');
  t.ok(depsStage, 'node_modules is copied from a named stage');
  if (depsStage) {
    const installs = all(depsStage, 'RUN').filter((r) => /\bnpm (ci|install|i)\b/.test(r.rest));
    t.equal(installs.length, 1, 'that stage installs once');
    t.match(installs[0]?.rest, /\bnpm ci\b.*--omit=dev\b/, 'with npm ci --omit=dev (lockfile versions, no devDependencies)');
    const inputs = all(depsStage, 'COPY').flatMap((c) => copyPaths(c).sources);
    t.same(inputs.sort(), ['package-lock.json', 'package.json'], 'and sees only the manifest and lockfile');
    t.notOk(all(depsStage, 'RUN').some((r) => /npm (ci|install|i)\b(?!.*--omit=dev)/.test(r.rest)), 'no other install could add devDependencies');
  }

  const distCopy = copies.find(({ sources }) => sources.some((s) => /(^|\/)dist\/?$/.test(s)));
  t.ok(distCopy?.c.flags.from, 'dist/ comes from the build stage, compiled from src/ there');
  const every = copies.flatMap(({ sources }) => sources);
  for (const forbidden of ['test', 'bench', 'src', 'deploy', '.', 'tsconfig.json']) {
    t.notOk(every.some((s) => s.replace(/^\/app\//, '').replace(/\/$/, '') === forbidden), `the final stage does not copy ${forbidden}`);
  }
  t.ok(Object.keys(pkg.devDependencies).length > 0, 'package.json has devDependencies that --omit=dev keeps out');
});

t.test('runs as a non-root user given by number (Kubernetes runAsNonRoot can check it)', async (t) => {
  const user = all(final, 'USER').at(-1);
  t.ok(user, 'the final stage sets USER');
  const [uid = '', gid] = (user?.rest ?? '').split(':');
  t.match(uid, /^\d+$/, 'numeric uid');
  t.not(Number(uid), 0, 'not root');
  if (gid !== undefined) t.not(Number(gid), 0, 'not the root group');
  const after = final.instructions.slice(final.instructions.indexOf(user as NonNullable<typeof user>) + 1);
  t.notOk(after.some((i) => i.keyword === 'USER'), 'no later USER switches back');
});

t.test('HEALTHCHECK probes /healthz on the admin port, the port the gateway really uses', async (t) => {
  const check = one(final, 'HEALTHCHECK');
  const cmd = /^CMD\s+(.*)$/.exec(check.rest)?.[1] ?? '';
  const argv = JSON.parse(cmd) as string[];
  t.equal(argv[0], 'node', 'exec form, with Node (no curl in the slim image)');
  t.match(argv.join(' '), /\/healthz/, 'hits /healthz');
  t.match(argv.join(' '), new RegExp(`GATEWAY_ADMIN_PORT\\|\\|${adminPortDefault}\\b`), `follows GATEWAY_ADMIN_PORT, default ${adminPortDefault} like src/config/config.ts`);
  t.ok(check.flags.interval && check.flags.timeout && check.flags['start-period'], 'interval, timeout and start period set');
  const exposed = all(final, 'EXPOSE').flatMap((e) => e.rest.split(/\s+/));
  t.ok(exposed.includes(String(adminPortDefault)), 'the admin port is EXPOSEd');
  t.ok(exposed.includes(String(loadConfig({}).port)), 'the proxy port is EXPOSEd');

  // Run the very command Docker would run, against a live gateway and against a closed port.
  const gw = await startTestGateway(t, {});
  const run = (port: string) =>
    new Promise<number | null>((resolve) => {
      const child = spawn(argv[0] ?? 'node', argv.slice(1), { env: { ...process.env, GATEWAY_ADMIN_PORT: port }, stdio: 'ignore' });
      child.on('exit', (code) => resolve(code));
    });
  t.equal(await run(new URL(gw.adminUrl).port), 0, 'healthy gateway → exit 0');
  t.equal(await run(String(await freePort())), 1, 'nothing listening → exit 1');
});

t.test('STOPSIGNAL SIGTERM starts the graceful drain', async (t) => {
  t.equal(one(final, 'STOPSIGNAL').rest, 'SIGTERM');
});

t.test('ENTRYPOINT runs the package bin in exec form, CMD defaults to serve', async (t) => {
  const bins = Object.values(pkg.bin);
  t.equal(bins.length, 1, 'one bin in package.json');
  const entry = one(final, 'ENTRYPOINT').json;
  t.ok(entry, 'exec form: node is PID 1 and receives SIGTERM itself (no /bin/sh -c in between)');
  t.equal(entry?.[0], 'node');
  t.equal(entry?.at(-1), bins[0], `node … ${bins[0]}`);
  t.same(entry?.slice(1, -1), ['--max-semi-space-size=8'], 'the young generation bounded at stock fastify\'s size (docs/operations.md, "Memory")');
  t.same(one(final, 'CMD').json, ['serve'], 'CMD is the serve subcommand');
  // The bin must be inside what the final stage copied into its WORKDIR.
  const dest = (d: string) => posix.resolve(workdir(final), d);
  const copiedDirs = all(final, 'COPY').map((c) => dest(copyPaths(c).dest));
  t.ok(copiedDirs.some((d) => posix.resolve(workdir(final), bins[0] ?? '').startsWith(`${d}/`)), 'the bin path lies under a copied directory');
});

t.test('no secret is baked into the image', async (t) => {
  const secretName = /SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|API_?KEY|DATABASE_URL|REDIS_URL/i;
  for (const stage of dockerfile.stages) {
    for (const i of [...all(stage, 'ENV'), ...all(stage, 'ARG')]) {
      for (const { name, value } of assignments(i)) {
        t.notOk(secretName.test(name) && value !== null && value !== '', `${i.keyword} ${name} (line ${i.line}) carries no value`);
      }
    }
  }
  for (const [name, value] of Object.entries(dockerfile.globalArgs)) {
    t.notOk(secretName.test(name) && value !== '', `global ARG ${name} carries no secret`);
  }
  const sources = dockerfile.stages.flatMap((s) => all(s, 'COPY').filter((c) => !c.flags.from).flatMap((c) => copyPaths(c).sources));
  t.notOk(sources.some((s) => /\.env|\.pem$|\.key$|id_rsa|\.npmrc/.test(s)), 'no key, .env or .npmrc is copied');
});

t.test('.dockerignore keeps the build context to what the Dockerfile copies', async (t) => {
  for (const path of ['node_modules/pg/package.json', '.git/HEAD', 'test/deploy/dockerfile.test.ts', 'bench/README.md', 'dist/cli.js', '.tap/report', 'deploy/docker-compose.yml', 'docs/SECURITY.md', 'README.md', '.env', 'secrets/key.pem', 'coverage/lcov.info', '.ci/run']) {
    t.ok(isIgnored(ignore, path), `${path} is excluded`);
  }
  const contextSources = dockerfile.stages.flatMap((s) => all(s, 'COPY').filter((c) => !c.flags.from).flatMap((c) => copyPaths(c).sources));
  for (const source of new Set(contextSources)) {
    const probe = source === 'src' ? 'src/cli.ts' : source;
    t.notOk(isIgnored(ignore, probe), `${probe}, which the Dockerfile copies, is in the context`);
  }
});
