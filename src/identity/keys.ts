// Signing keys of the identity token (X-Gateway-Identity): read from PEM, published as public
// JWKs, and named by their RFC 7638 thumbprint, so every replica holding the same key file gives
// it the same `kid` without any coordination between replicas.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

export type AsymmetricAlg = 'EdDSA' | 'ES256';
export type IdentityTokenAlg = AsymmetricAlg | 'HS256';

export const IDENTITY_TOKEN_ALGS: Set<string> = new Set<IdentityTokenAlg>(['EdDSA', 'ES256', 'HS256']);

/** What the JWKS publishes for one key. */
export interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  y?: string;
  kid: string;
  alg: AsymmetricAlg;
  use: 'sig';
}

export interface SigningKey {
  alg: AsymmetricAlg;
  kid: string;
  privateKey: KeyObject;
  publicJwk: PublicJwk;
}

export type ParsedKey = { ok: true; key: SigningKey } | { ok: false; reason: string };

/** A PEM private key (PKCS#8, or SEC1 for EC) as a signing key, or why it cannot be one. */
export function parseSigningKey(pem: string): ParsedKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    return { ok: false, reason: 'is not an unencrypted PEM private key' };
  }
  const alg = algOf(privateKey);
  if (!alg) return { ok: false, reason: `holds ${describeKey(privateKey)} key; use Ed25519 (EdDSA) or EC P-256 (ES256)` };
  return { ok: true, key: toSigningKey(privateKey, alg) };
}

/** A fresh key for one process (single-replica mode without key files). */
export function generateSigningKey(alg: AsymmetricAlg): SigningKey {
  const { privateKey } = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return toSigningKey(privateKey, alg);
}

/** PKCS#8 PEM, the form `openssl genpkey` writes and GATEWAY_IDENTITY_JWT_KEY_FILES reads. */
export function exportPrivateKeyPem(key: SigningKey): string {
  return key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** "an Ed25519" / "an EC P-256" / "an rsa": for error lines. */
export function describeKey(key: KeyObject): string {
  const alg = algOf(key);
  if (alg === 'EdDSA') return 'an Ed25519';
  if (alg === 'ES256') return 'an EC P-256';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return `an ${key.asymmetricKeyType ?? 'unknown'}${curve ? ` ${curve}` : ''}`;
}

export function describeAlgKey(alg: AsymmetricAlg): string {
  return alg === 'EdDSA' ? 'an Ed25519' : 'an EC P-256';
}

function algOf(key: KeyObject): AsymmetricAlg | null {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  return null;
}

function toSigningKey(privateKey: KeyObject, alg: AsymmetricAlg): SigningKey {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as { kty: string; crv: string; x: string; y?: string };
  const kid = thumbprint(jwk);
  const publicJwk: PublicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, ...(jwk.y ? { y: jwk.y } : {}), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicJwk };
}

/** RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace. */
function thumbprint(jwk: { kty: string; crv: string; x: string; y?: string }): string {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}
