import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { OptionsError } from '../src/index.js';

export interface AppConfig {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly adminToken: string;
  /** Bearer token of GET /metrics: TENANTRY_METRICS_TOKEN, else the admin token. */
  readonly metricsToken: string;
  readonly production: boolean;
  readonly generated: readonly string[];
}

/** Reads the app's environment once; in production a missing secret stops the start. */
export function loadAppConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const production = env.NODE_ENV === 'production';
  const generated: string[] = [];
  const portRaw = env.PORT ?? '3000';
  const port = Number(portRaw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new OptionsError('PORT', `not a port: ${JSON.stringify(portRaw)}`);
  let adminToken = env.TENANTRY_ADMIN_TOKEN;
  if (!adminToken) {
    if (production) throw new OptionsError('TENANTRY_ADMIN_TOKEN', 'required in production');
    adminToken = randomBytes(24).toString('base64url');
    generated.push('TENANTRY_ADMIN_TOKEN');
  } else if (adminToken.length < 16) {
    throw new OptionsError('TENANTRY_ADMIN_TOKEN', 'must be at least 16 characters');
  }
  const metricsToken = env.TENANTRY_METRICS_TOKEN || adminToken;
  if (metricsToken.length < 16) throw new OptionsError('TENANTRY_METRICS_TOKEN', 'must be at least 16 characters');
  return Object.freeze({
    port,
    host: env.HOST ?? '127.0.0.1',
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: path.resolve(env.TENANTRY_DATA_DIR ?? '.tenantry'),
    adminToken,
    metricsToken,
    production,
    generated: Object.freeze(generated),
  });
}
