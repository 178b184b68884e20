import { createPrivateKey, createPublicKey, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { TenantryError } from '../errors.js';
import { UUID_PATTERN } from '../core/tenant-ids.js';

export interface TokenOptions {
  /** HS256 shared secret (at least 32 bytes). Used when no key pair is given. */
  readonly secret?: string;
  /** PEM private key (Ed25519, P-256 or RSA) for signing; with publicKey, replaces the secret. */
  readonly privateKey?: string;
  /** PEM public key for verifying; alone, this service can verify but not sign. */
  readonly publicKey?: string;
  readonly issuer: string;
  readonly audience: string;
  /** Token lifetime in seconds. */
  readonly ttlSeconds: number;
}

export interface TokenClaims {
  /** The user id. */
  readonly sub: string;
  /** The tenant id. */
  readonly tid: string;
  readonly role: 'owner' | 'admin' | 'agent';
  /**
   * Issued at, in seconds since the epoch, with milliseconds (a JWT NumericDate may be
   * fractional): a revocation must tell a token issued just before it from one issued just after.
   */
  readonly iat: number;
}

const ROLES = new Set(['owner', 'admin', 'agent']);
const UUID = UUID_PATTERN;

function algFor(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case 'ed25519': return 'EdDSA';
    case 'ec': return 'ES256';
    case 'rsa': return 'RS256';
    default: throw new Error(`unsupported JWT key type ${key.asymmetricKeyType}`);
  }
}

/**
 * Issues and verifies access tokens. The accepted algorithm is pinned to the one the key is for:
 * "alg: none" and an HS256 token signed with the public key as secret (algorithm confusion) are
 * rejected, whatever the header says.
 */
export class TokenService {
  readonly #signKey: KeyObject | undefined;
  readonly #verifyKey: KeyObject;
  /**
   * Tokens already verified, until shortly before they expire (at most a minute): a signature
   * check costs more CPU than the rest of a request. Keyed by the whole token, so a forged or
   * altered token never matches an entry.
   */
  readonly #verified = new LRUCache<string, TokenClaims>({ max: 10_000, ttl: 60_000 });
  readonly #alg: string;
  readonly #opts: TokenOptions;

  constructor(opts: TokenOptions) {
    this.#opts = opts;
    if (opts.publicKey || opts.privateKey) {
      const priv = opts.privateKey ? createPrivateKey(opts.privateKey) : undefined;
      const pub = opts.publicKey ? createPublicKey(opts.publicKey) : createPublicKey(priv!);
      this.#alg = algFor(pub);
      this.#signKey = priv;
      this.#verifyKey = pub;
    } else {
      if (!opts.secret || Buffer.byteLength(opts.secret) < 32) throw new Error('the JWT secret must be at least 32 bytes');
      // A KeyObject made once: given raw bytes, jose would import the key again on every verify.
      const key = createSecretKey(Buffer.from(opts.secret));
      this.#alg = 'HS256';
      this.#signKey = key;
      this.#verifyKey = key;
    }
  }

  get algorithm(): string {
    return this.#alg;
  }

  get ttlSeconds(): number {
    return this.#opts.ttlSeconds;
  }

  async sign(claims: Omit<TokenClaims, 'iat'>): Promise<string> {
    if (!this.#signKey) throw new Error('this token service has no signing key');
    return new SignJWT({ tid: claims.tid, role: claims.role })
      .setProtectedHeader({ alg: this.#alg, typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuer(this.#opts.issuer)
      .setAudience(this.#opts.audience)
      .setIssuedAt(Date.now() / 1000)
      .setJti(randomBytes(12).toString('base64url'))
      .setExpirationTime(`${this.#opts.ttlSeconds}s`)
      .sign(this.#signKey);
  }

  /** Verified claims, or TenantryError('invalid_token') for any defect. */
  async verify(token: string): Promise<TokenClaims> {
    const hit = this.#verified.get(token);
    if (hit) return hit;
    try {
      const { payload } = await jwtVerify(token, this.#verifyKey, {
        algorithms: [this.#alg],
        issuer: this.#opts.issuer,
        audience: this.#opts.audience,
        requiredClaims: ['exp', 'iat', 'sub'],
        clockTolerance: 5,
      });
      const { sub, tid, role, iat } = payload as { sub?: unknown; tid?: unknown; role?: unknown; iat?: unknown };
      if (typeof sub !== 'string' || typeof tid !== 'string' || !UUID.test(tid) || typeof role !== 'string' || !ROLES.has(role) || typeof iat !== 'number') {
        throw new TenantryError('invalid_token', 'the token lacks valid sub, tid, role or iat claims');
      }
      const claims: TokenClaims = Object.freeze({ sub, tid, role: role as TokenClaims['role'], iat: iat as number });
      const ttl = (payload.exp! - 5) * 1000 - Date.now();
      if (ttl > 0) this.#verified.set(token, claims, { ttl: Math.min(ttl, 60_000) });
      return claims;
    } catch (err) {
      if (err instanceof TenantryError) throw err;
      const reason = err instanceof joseErrors.JWTExpired ? 'the token has expired'
        : err instanceof joseErrors.JWTClaimValidationFailed ? `claim check failed: ${err.claim}`
        : 'the token signature or format is not valid';
      throw new TenantryError('invalid_token', reason);
    }
  }
}
