import { createPrivateKey, createPublicKey, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { TenantryError } from '../errors.js';
import { isRole, type Role } from './roles.js';
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
  /** One of the roles the application registered (registerRoles). */
  readonly role: Role;
  /** Issued at, in seconds since the epoch, with milliseconds (a JWT NumericDate may be fractional). */
  readonly iat: number;
  /**
   * The credential clock reading taken before the user's row was read (claim `cv`; see
   * CredentialRevocations): the token is refused once its subject is revoked at a later reading.
   * Tokens without the claim count as 0.
   */
  readonly cv: number;
}

/**
 * How far in the future a token's `iat` may lie and still be accepted, seconds: the clock skew
 * allowed between the process that signed it and the one that checks it (the same allowance as
 * for `exp`). A token from further ahead was not signed by a process with a sane clock.
 */
export const CLOCK_SKEW_SECONDS = 5;
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

  /**
   * Signs a token. `from` (ms since the epoch, default now) is when the credential was read: the
   * lifetime counts from it, so a token never outlives its credential's reading by more than the
   * TTL (revocations are forgotten one TTL after they are made; see CredentialRevocations).
   * Logins go through Credentials.issueToken, which takes the clock reading `cv` first; a token
   * signed here without one is refused after any revocation of its subject.
   */
  async sign(claims: Omit<TokenClaims, 'iat' | 'cv'> & { cv?: number }, from: number = Date.now()): Promise<string> {
    if (!this.#signKey) throw new Error('this token service has no signing key');
    if (!isRole(claims.role)) throw new TypeError(`cannot sign a token for role "${claims.role}": not a registered role`);
    // Without a reading, 0: the token dies at its subject's first revocation, whenever it was signed.
    const cv = claims.cv ?? 0;
    if (!Number.isSafeInteger(cv) || cv < 0) throw new TypeError('cv must be a credential clock reading');
    return new SignJWT({ tid: claims.tid, role: claims.role, cv })
      .setProtectedHeader({ alg: this.#alg, typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuer(this.#opts.issuer)
      .setAudience(this.#opts.audience)
      .setIssuedAt(Date.now() / 1000)
      .setJti(randomBytes(12).toString('base64url'))
      .setExpirationTime(Math.floor(from / 1000) + this.#opts.ttlSeconds)
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
        clockTolerance: CLOCK_SKEW_SECONDS,
      });
      const { sub, tid, role, iat, cv = 0 } = payload as { sub?: unknown; tid?: unknown; role?: unknown; iat?: unknown; cv?: unknown };
      if (typeof sub !== 'string' || typeof tid !== 'string' || !UUID.test(tid) || !isRole(role) || typeof iat !== 'number'
        || typeof cv !== 'number' || !Number.isSafeInteger(cv) || cv < 0) {
        throw new TenantryError('invalid_token', 'the token lacks valid sub, tid, role, iat or cv claims');
      }
      // jose checks iat only against a maximum age: a token "issued" in the future would otherwise
      // pass, and outlive what its iat claims.
      if (iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS) throw new TenantryError('invalid_token', 'the token was issued in the future');
      const claims: TokenClaims = Object.freeze({ sub, tid, role, iat, cv });
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
