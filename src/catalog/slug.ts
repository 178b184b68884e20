/** Slugs that would shadow platform hosts or confuse users, refused as tenant slugs. */
export const reservedSlugs: ReadonlySet<string> = new Set([
  'www', 'api', 'admin', 'app', 'apps', 'auth', 'login', 'logout', 'signup', 'register', 'account',
  'accounts', 'dashboard', 'console', 'status', 'static', 'assets', 'cdn', 'mail', 'email', 'smtp',
  'imap', 'pop', 'ftp', 'ns', 'ns1', 'ns2', 'dns', 'mx', 'docs', 'help', 'support', 'blog', 'dev',
  'staging', 'test', 'demo', 'internal', 'root', 'system', 'platform', 'tenant', 'tenants',
  'tenantry', 'billing', 'security', 'localhost', 'healthz', 'readyz', 'metrics',
  // The label value of every tenant without a series of its own in the metrics (docs/metrics.md).
  'other',
]);

/** A DNS label of 3–63 characters: lower-case letters, digits and inner hyphens. */
export const SLUG_PATTERN = '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$';
const slugRe = new RegExp(SLUG_PATTERN);

export type SlugProblem = 'invalid' | 'reserved';

export function checkSlug(slug: string): SlugProblem | null {
  if (!slugRe.test(slug) || slug.includes('--')) return 'invalid';
  if (reservedSlugs.has(slug)) return 'reserved';
  return null;
}
