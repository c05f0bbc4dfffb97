/**
 * What node-postgres's pg/lib/crypto/utils.js does, with node:crypto's one-shot functions instead of
 * WebCrypto. The bundle (scripts/bundle.mjs) puts this module in its place: pg's own loads Node's
 * WebCrypto layer (a dozen internal modules) and runs the SCRAM key derivation as async WebCrypto
 * calls, about 7 ms of every connection's start (measured with a minimal client: 0.198 s → 0.191 s
 * for a whole one-row import). The answers are the same bytes (test/unit/scram-crypto.test.ts checks
 * them against pg's own); the functions stay async, as pg awaits them.
 *
 * node:crypto itself (4-5 ms to load here) is loaded on first use, not with pg: an import starts
 * connecting before it is needed, and loads it while the server starts the backend (connectAhead).
 */
import { lazyBuiltin } from '../lazy-builtin.js';

const crypto = lazyBuiltin<typeof import('node:crypto')>('node:crypto');

type Bytes = Buffer | Uint8Array | ArrayBuffer;

function buffer(b: Bytes | string): Buffer | string {
  if (typeof b === 'string' || Buffer.isBuffer(b)) return b;
  return b instanceof ArrayBuffer ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export function randomBytes(length: number): Buffer {
  return crypto().randomBytes(length);
}

export async function md5(text: string | Buffer): Promise<string> {
  return crypto().createHash('md5').update(text).digest('hex');
}

/** AuthenticationMD5Password: 'md5' + md5(md5(password + user) + salt). */
export async function postgresMd5PasswordHash(user: string, password: string, salt: Buffer): Promise<string> {
  const inner = await md5(password + user);
  return `md5${await md5(Buffer.concat([Buffer.from(inner), salt]))}`;
}

export async function sha256(data: Bytes): Promise<Buffer> {
  return crypto().createHash('sha256').update(buffer(data)).digest();
}

/** A WebCrypto hash name ('SHA-256', 'SHA-512', 'SHA512-256'…) as node:crypto spells it. */
export function nodeHashName(webName: string): string {
  return webName.toLowerCase().replace(/^sha-/, 'sha');
}

export async function hashByName(hashName: string, data: Bytes): Promise<Buffer> {
  return crypto().createHash(nodeHashName(hashName)).update(buffer(data)).digest();
}

export async function hmacSha256(key: Bytes, message: string): Promise<Buffer> {
  return crypto().createHmac('sha256', buffer(key)).update(message).digest();
}

/**
 * Keys derived in this process, by password, salt and iterations: a parallel import opens several
 * connections to one server as one role at once, and the server gives each the same salt, so the
 * 4,096 rounds of PBKDF2 (synchronous, on the one JavaScript thread every connection's start waits
 * on) are run once instead of once a connection.
 */
const derived = new Map<string, Buffer>();

/** SCRAM's Hi(): PBKDF2 with HMAC-SHA-256, 32 bytes. */
export async function deriveKey(password: string, salt: Uint8Array, iterations: number): Promise<Buffer> {
  const key = `${iterations}:${Buffer.from(salt.buffer, salt.byteOffset, salt.byteLength).toString('base64')}:${password}`;
  let k = derived.get(key);
  if (k === undefined) {
    k = crypto().pbkdf2Sync(password, salt, iterations, 32, 'sha256');
    derived.set(key, k);
  }
  return Buffer.from(k);
}
