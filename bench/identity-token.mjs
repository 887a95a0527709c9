// Cost of the signed identity token (GATEWAY_IDENTITY_JWT) on the proxied hot path — a measuring
// aid, not a test. A request whose session has a cached token pays one LRU lookup; a signature
// happens once per session per half token lifetime. This prints both, per algorithm.
//
//   npm run build && node bench/identity-token.mjs      # ITERATIONS=20000 by default
import { createIdentityTokens } from '../dist/identity/signed-identity.js';
import { generateSigningKey } from '../dist/identity/keys.js';

const ITERATIONS = Number(process.env.ITERATIONS ?? 20_000);
const identity = { user: 'alice', email: 'alice@example.com', groups: ['staff', 'ops'] };

function perOperationMicros(work) {
  for (let i = 0; i < 1_000; i++) work(i); // warm up
  const started = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) work(i);
  return Number(process.hrtime.bigint() - started) / 1_000 / ITERATIONS;
}

const modes = [
  { alg: 'EdDSA', keys: [generateSigningKey('EdDSA')], hmacSecret: null },
  { alg: 'ES256', keys: [generateSigningKey('ES256')], hmacSecret: null },
  { alg: 'HS256', keys: [], hmacSecret: 'x'.repeat(48) },
];
console.log(`| alg | cached token (µs/request) | new signature (µs/token) |\n| --- | --- | --- |`);
for (const mode of modes) {
  const base = { ...mode, issuer: 'https://app.example.com', audience: 'http://127.0.0.1:8080', lifetimeMs: 60_000 };
  const tokens = createIdentityTokens(base);
  const session = { idHash: 'one-session', record: identity };
  tokens.tokenFor(session);
  const hit = perOperationMicros(() => tokens.tokenFor(session));
  // A fresh session id each time: every call signs (and fills the cache, as a login burst would).
  const sign = perOperationMicros((i) => tokens.tokenFor({ idHash: `s${i}-${Math.random()}`, record: identity }));
  console.log(`| ${mode.alg} | ${hit.toFixed(2)} | ${sign.toFixed(1)} |`);
}
