// A real `session-gateway serve` shrinks V8's young generation once start-up is done, before it
// listens (startup-memory.ts): the log line says from what to what, requests are served after it,
// and the process is left without a `gc` function in any context. GATEWAY_RELEASE_STARTUP_MEMORY=false
// turns it off.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { ensureBuilt, loopbackServe, ROOT, spawnCli, waitForStatus } from '../helpers/cli.js';
import { TEST_SECRET } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { startEchoUpstream } from '../helpers/upstream.js';

await ensureBuilt();
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());

/** A real `serve` on loopback ports in embedded mode (no Redis, no PostgreSQL): start-up is what is measured. */
async function serve(t: Parameters<typeof spawnCli>[0], extra: Record<string, string> = {}) {
  const { port, adminPort, env } = await loopbackServe(upstream.url);
  const proc = spawnCli(t, ['serve'], {
    ...env,
    GATEWAY_SESSION_SECRET: TEST_SECRET,
    GATEWAY_COOKIE_SECURE: 'false',
    LOG_LEVEL: 'info',
    ...extra,
  });
  await waitForStatus(`http://127.0.0.1:${adminPort}/readyz`, 200, { process: proc, timeoutMs: 30_000 });
  return { proc, port };
}

t.test('serve: the young generation start-up grew is shrunk before listening', async (t) => {
  const { proc, port } = await serve(t);
  const lines = proc.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; youngGenerationMiB?: [number, number]; ms?: number });
  const released = lines.find((l) => l.msg === 'start-up memory released');
  t.ok(released, 'the release is logged');
  const [before, after] = released?.youngGenerationMiB ?? [0, 0];
  t.ok(before >= 4, `start-up grew the young generation (${before} MiB)`);
  t.ok(after < before && after <= 2, `and it was shrunk (${before} → ${after} MiB)`);
  t.ok(lines.findIndex((l) => l.msg === 'start-up memory released') < lines.findIndex((l) => l.msg === 'session-gateway listening'), 'before listening');
  const res = await send(`http://127.0.0.1:${port}/_auth/login`);
  t.equal(res.status, 200, 'the gateway serves requests afterwards');
});

t.test('GATEWAY_RELEASE_STARTUP_MEMORY=false: start-up is left as it is', async (t) => {
  const { proc } = await serve(t, { GATEWAY_RELEASE_STARTUP_MEMORY: 'false' });
  t.ok(proc.stdout().includes('"msg":"session-gateway listening"'), 'the gateway started');
  t.notOk(proc.stdout().includes('start-up memory released'), 'no collection was run');
});

t.test('the collection leaves no gc function behind, in the main context or a new one', async (t) => {
  const script = `
    import { runInNewContext } from 'node:vm';
    const { releaseStartUpMemory } = await import(${JSON.stringify(join(ROOT, 'dist', 'startup-memory.js'))});
    const result = releaseStartUpMemory();
    console.log(JSON.stringify({ result, main: typeof globalThis.gc, fresh: runInNewContext('typeof gc') }));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.equal(code, 0);
  const report = JSON.parse(out) as { result: { beforeBytes: number; afterBytes: number } | null; main: string; fresh: string };
  t.not(report.result, null, 'this Node offers the memory-reducing collection');
  t.equal(report.main, 'undefined', 'no global gc in the main context');
  t.equal(report.fresh, 'undefined', 'nor in a context made afterwards (the flag is withdrawn)');
});
