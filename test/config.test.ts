/**
 * Start-up configuration: in production a missing secret is an error that names the variable; in
 * development it is generated and printed. Every bad value stops `npm start` before anything
 * (embedded PostgreSQL included) is started.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { loadAppConfig } from '../app/config.js';
import { loadOptions, OptionsError } from '../src/index.js';
import { optionRows } from '../src/config/options-docs.js';
import { optionTable, resolveOption, type OptionKey } from '../src/config/options.js';
import { withOptionsTable } from '../scripts/docs-options.js';
import { migrationsDir } from './helpers.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const base = { databaseUrl: 'postgres://u@127.0.0.1:1/db', migrationsDir };

/** Runs app/main.ts with exactly `env` (plus PATH); resolves when it exits (or after 30 s). */
function start(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'app/main.ts'], {
      cwd: root, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

describe('start-up configuration', () => {
  it('production: a missing admin token or JWT secret is an error naming the variable', () => {
    assert.throws(() => loadAppConfig({ NODE_ENV: 'production' }), (e: unknown) => e instanceof OptionsError && /TENANTRY_ADMIN_TOKEN/.test(e.message));
    assert.throws(() => loadOptions(base, { NODE_ENV: 'production' }), (e: unknown) => e instanceof OptionsError && /TENANTRY_JWT_SECRET/.test(e.message));
    // Given, they are used as they are and nothing is reported as generated.
    const secret = 'a-production-secret-of-at-least-32-bytes!';
    const o = loadOptions(base, { NODE_ENV: 'production', TENANTRY_JWT_SECRET: secret });
    assert.deepEqual(o.generated, []);
    assert.equal(loadAppConfig({ NODE_ENV: 'production', TENANTRY_ADMIN_TOKEN: 'admin-token-0123456789' }).adminToken, 'admin-token-0123456789');
  });

  it('development: missing secrets are generated (fresh each time) and reported', () => {
    const a = loadAppConfig({});
    const b = loadAppConfig({});
    assert.deepEqual(a.generated, ['TENANTRY_ADMIN_TOKEN']);
    assert.ok(a.adminToken.length >= 16 && a.adminToken !== b.adminToken);
    const o = loadOptions(base, {});
    assert.ok(o.generated.includes('TENANTRY_JWT_SECRET'));
  });

  it('bad values are refused with the variable named', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ TENANTRY_POOL_MAX: '0' }, /TENANTRY_POOL_MAX/],
      [{ TENANTRY_POOL_MAX: 'ten' }, /TENANTRY_POOL_MAX/],
      [{ TENANTRY_RESOLVERS: 'subdomain,cookie' }, /TENANTRY_RESOLVERS/],
      [{ TENANTRY_BASE_DOMAIN: 'not a domain' }, /TENANTRY_BASE_DOMAIN/],
      [{ TENANTRY_JWT_SECRET: 'short' }, /TENANTRY_JWT_SECRET/],
      [{ TENANTRY_CATALOG_TIMEOUT_MS: '-1' }, /TENANTRY_CATALOG_TIMEOUT_MS/],
      [{ TENANTRY_CATALOG_LISTEN: 'maybe' }, /TENANTRY_CATALOG_LISTEN/],
    ];
    for (const [env, name] of cases) {
      assert.throws(() => loadOptions(base, env), (e: unknown) => e instanceof OptionsError && name.test(e.message), JSON.stringify(env));
    }
    assert.equal(loadOptions(base, {}).catalogListen, true);
    assert.equal(loadOptions(base, { TENANTRY_CATALOG_LISTEN: '0' }).catalogListen, false);
    assert.throws(() => loadAppConfig({ PORT: 'eighty' }), (e: unknown) => e instanceof OptionsError && /PORT/.test(e.message));
  });

  it('the options table of README.md is generated from the table: every option, its variable and default', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    assert.equal(withOptionsTable(readme), readme, 'README.md is out of date: run npm run docs:options');
    for (const row of optionRows()) {
      const line = readme.split('\n').find((l) => l.startsWith(`| ${row.env ? `\`${row.env}\`` : '—'} | \`${row.key}\` |`));
      assert.ok(line, `README has a row for ${row.key}`);
      assert.ok(line.includes(`| ${row.default} |`), `README shows the default of ${row.key}: ${row.default}`);
    }
    // Every variable the toolkit reads is in the table (no env lookups outside it).
    const envs = optionRows().map((r) => r.env).filter(Boolean);
    assert.equal(new Set(envs).size, envs.length, 'a variable is used by two options');
  });

  it('every variable of the table reaches its option, and an explicit value beats it', () => {
    const at = (o: object, key: string) => key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], o);
    const samples: Partial<Record<OptionKey, [string, unknown]>> = {
      runtimeUrl: ['postgres://pooler:6432/db', 'postgres://pooler:6432/db'],
      pooler: ['transaction', 'transaction'],
      baseDomain: ['Example.TEST', 'example.test'],
      resolvers: ['jwt, header', ['jwt', 'header']],
      'jwt.privateKey': ['pem-private', 'pem-private'],
      'jwt.publicKey': ['pem-public', 'pem-public'],
      'jwt.secret': ['s'.repeat(40), 's'.repeat(40)],
      'jwt.issuer': ['issuer-x', 'issuer-x'],
      'jwt.audience': ['audience-x', 'audience-x'],
      rolePasswords: ['a-role-password-123', { app: 'a-role-password-123', platform: 'a-role-password-123' }],
      catalogListen: ['0', false],
      plans: ['{"gold": {"burst": 5, "quotas": {"seats": 3}}}', { gold: { burst: 5, quotas: { seats: 3 } } }],
      redisUrl: ['redis://cache:6380/2', 'redis://cache:6380/2'],
      redisPrefix: ['svc:', 'svc:'],
      trustProxy: ['10.0.0.0/8, 192.168.1.1', '10.0.0.0/8,192.168.1.1'],
      'cache.tenantMaxBytes': ['4096', 4096],
      passwordHashConcurrency: ['3', 3],
      metricsTenantLabels: ['25', 25],
    };
    for (const key of Object.keys(optionTable) as OptionKey[]) {
      const spec = optionTable[key];
      if (!spec.env || key === 'databaseUrl' || key === 'migrationsDir') continue;
      const [raw, expected] = samples[key] ?? [String((spec.default as number) + 1), (spec.default as number) + 1];
      assert.equal(typeof raw, 'string', `a sample for ${key}`);
      assert.deepEqual(at(loadOptions(base, { [spec.env]: raw }), key), expected, `${spec.env} → ${key}`);
      assert.deepEqual(resolveOption(key, {}, { [spec.env]: raw }), expected, `resolveOption(${key})`);
    }
    assert.equal(loadOptions({ ...base, poolMax: 3 }, { TENANTRY_POOL_MAX: '7' }).poolMax, 3);
    assert.equal(loadOptions(base, { TENANTRY_POOL_MAX: '' }).poolMax, 10, 'an empty variable is unset');
    assert.equal(loadOptions(base, { TENANTRY_MIGRATIONS_DIR: '/elsewhere' }).migrationsDir, migrationsDir, 'explicit beats the variable');
    // Explicit values get the same checks, naming the variable.
    assert.throws(() => loadOptions({ ...base, poolMax: 0 }, {}), /TENANTRY_POOL_MAX/);
    assert.throws(() => loadOptions({ ...base, baseDomain: 'not a domain' }, {}), /TENANTRY_BASE_DOMAIN/);
    // Plans are checked field by field, naming the variable and the field.
    assert.throws(() => loadOptions(base, { TENANTRY_PLANS: '{"free": {"burst": 0}}' }), /TENANTRY_PLANS: free\.burst/);
    assert.throws(() => loadOptions(base, { TENANTRY_PLANS: '{"free": {"color": 1}}' }), /TENANTRY_PLANS: free: unknown field "color"/);
    assert.throws(() => loadOptions(base, { TENANTRY_PLANS: '[1]' }), /TENANTRY_PLANS/);
    assert.throws(() => loadOptions(base, { REDIS_URL: 'http://x' }), /REDIS_URL/);
    assert.equal(loadOptions(base, { TENANTRY_TRUST_PROXY: '2' }).trustProxy, 2);
    assert.equal(loadOptions(base, { TENANTRY_TRUST_PROXY: 'true' }).trustProxy, true);
  });

  it('npm start refuses to start in production without secrets, before starting any database', { timeout: 120_000 }, async () => {
    const runs: [Record<string, string>, RegExp][] = [
      [{ NODE_ENV: 'production' }, /TENANTRY_ADMIN_TOKEN/],
      [{ NODE_ENV: 'production', TENANTRY_ADMIN_TOKEN: 'admin-token-0123456789' }, /TENANTRY_JWT_SECRET/],
      [{ TENANTRY_POOL_MAX: '0' }, /TENANTRY_POOL_MAX/],
    ];
    for (const [env, name] of runs) {
      // A data folder that must stay untouched: no embedded PostgreSQL is started.
      const r = await start({ ...env, TENANTRY_DATA_DIR: '/nonexistent/tenantry-config-test' });
      assert.equal(r.code, 1, `${JSON.stringify(env)}: ${r.out}`);
      assert.match(r.out, name, JSON.stringify(env));
      assert.doesNotMatch(r.out, /Starting embedded PostgreSQL/, JSON.stringify(env));
    }
  });
});
