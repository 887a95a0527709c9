// A software passkey for API tests without a browser: an ES256 key pair from node:crypto, and the
// bytes a real authenticator and browser would send (clientDataJSON, authenticator data, a "none"
// attestation object in CBOR, an ECDSA signature), so the gateway verifies them with the same
// library and rules as a browser's. Knobs for the attacks the tests need: another origin, a
// signature counter that does not move forward, a credential id nobody registered.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

// ----- the few CBOR items WebAuthn uses (RFC 8949): unsigned/negative ints, byte and text strings, maps ---

type Cbor = number | string | Uint8Array | Map<Cbor, Cbor>;

function head(major: number, value: number): Buffer {
  if (value < 24) return Buffer.from([(major << 5) | value]);
  if (value < 0x100) return Buffer.from([(major << 5) | 24, value]);
  if (value < 0x10000) return Buffer.from([(major << 5) | 25, value >> 8, value & 0xff]);
  const out = Buffer.alloc(5);
  out[0] = (major << 5) | 26;
  out.writeUInt32BE(value, 1);
  return out;
}

export function cbor(item: Cbor): Buffer {
  if (typeof item === 'number') return item >= 0 ? head(0, item) : head(1, -1 - item);
  if (typeof item === 'string') {
    const bytes = Buffer.from(item, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (item instanceof Uint8Array) return Buffer.concat([head(2, item.length), item]);
  return Buffer.concat([head(5, item.size), ...[...item].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

const b64u = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest();
const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

export interface CeremonyOverrides {
  /** The origin the "browser" reports (default: the authenticator's). */
  origin?: string;
  /** The signature counter to report instead of the next one. */
  counter?: number;
  /** Another credential id to claim. */
  credentialId?: string;
}

export interface SoftPasskey {
  readonly credentialId: string;
  /** The signature counter the last answer carried. */
  counter: number;
  register(options: { challenge: string }, overrides?: CeremonyOverrides): Record<string, unknown>;
  /**
   * The private key as PKCS#8 DER: what a passkey provider syncs to the user's other devices. The
   * browser tests put it into Chromium's virtual authenticator (CDP `WebAuthn.addCredential`).
   */
  privateKeyPkcs8(): Buffer;
  assert(options: { challenge: string }, overrides?: CeremonyOverrides): Record<string, unknown>;
}

export function softPasskey(origin: string): SoftPasskey {
  const rpId = new URL(origin).hostname;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const id = randomBytes(32);
  const state = { counter: 0 };

  const clientData = (type: string, challenge: string, o?: CeremonyOverrides) =>
    Buffer.from(JSON.stringify({ type, challenge, origin: o?.origin ?? origin, crossOrigin: false }), 'utf8');

  const authData = (flags: number, counter: number, attested?: Buffer) => {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), count, ...(attested ? [attested] : [])]);
  };

  return {
    credentialId: b64u(id),
    get counter() {
      return state.counter;
    },
    set counter(value: number) {
      state.counter = value;
    },
    register(options, o) {
      const idLength = Buffer.alloc(2);
      idLength.writeUInt16BE(id.length);
      const attested = Buffer.concat([Buffer.alloc(16), idLength, id, cbor(coseKey(publicKey))]);
      const data = authData(FLAG_UP | FLAG_UV | FLAG_AT, o?.counter ?? state.counter, attested);
      const attestationObject = cbor(new Map<Cbor, Cbor>([['fmt', 'none'], ['attStmt', new Map()], ['authData', data]]));
      const credentialId = o?.credentialId ?? b64u(id);
      return {
        id: credentialId,
        rawId: credentialId,
        type: 'public-key',
        clientExtensionResults: {},
        response: { clientDataJSON: b64u(clientData('webauthn.create', options.challenge, o)), attestationObject: b64u(attestationObject), transports: ['internal'] },
      };
    },
    privateKeyPkcs8: () => privateKey.export({ format: 'der', type: 'pkcs8' }),
    assert(options, o) {
      const counter = o?.counter ?? state.counter + 1;
      state.counter = counter;
      const data = authData(FLAG_UP | FLAG_UV, counter);
      const client = clientData('webauthn.get', options.challenge, o);
      const signature = signWith(privateKey, Buffer.concat([data, sha256(client)]));
      const credentialId = o?.credentialId ?? b64u(id);
      return {
        id: credentialId,
        rawId: credentialId,
        type: 'public-key',
        clientExtensionResults: {},
        response: { clientDataJSON: b64u(client), authenticatorData: b64u(data), signature: b64u(signature) },
      };
    },
  };
}

/** The public key as COSE_Key (RFC 9053): EC2, ES256, P-256, x and y. */
function coseKey(publicKey: KeyObject): Map<Cbor, Cbor> {
  const jwk = publicKey.export({ format: 'jwk' });
  return new Map<Cbor, Cbor>([
    [1, 2],
    [3, -7],
    [-1, 1],
    [-2, Buffer.from(jwk.x ?? '', 'base64url')],
    [-3, Buffer.from(jwk.y ?? '', 'base64url')],
  ]);
}

/** ECDSA P-256 over SHA-256, DER-encoded (what authenticators send). */
const signWith = (key: KeyObject, data: Buffer) => sign('sha256', data, key);
