import { CliUsageError, runCli, type TenantInit } from '../src/cli/index.js';
import { hashPassword } from '../src/index.js';
import { createOwner } from './owner.js';
import { migrationsDir } from './paths.js';
import { helpdeskPlans } from './plans.js';

type Owner = { email: string; name: string; password: string };

/** The helpdesk's part of `tenantry tenants create`: the --owner-* flags and the first owner. */
const firstOwner: TenantInit<Owner | null> = {
  options: {
    'owner-email': { type: 'string', description: "the first owner's email" },
    'owner-name': { type: 'string', description: "the first owner's name" },
    'owner-password': { type: 'string', description: "the first owner's password" },
  },
  parse(values) {
    const [email, name, password] = (['owner-email', 'owner-name', 'owner-password'] as const).map((k) => values[k] as string | undefined);
    if (!email && !name && !password) return null;
    if (!email || !name || !password) throw new CliUsageError('give all of --owner-email, --owner-name and --owner-password, or none');
    return { email, name, password };
  },
  async run(tenantry, _tenant, owner) {
    if (owner) await createOwner(tenantry, owner, await hashPassword(owner.password));
  },
};

/** The helpdesk's `tenantry` command: the toolkit CLI plus the helpdesk's first owner. */
export const exitCode = await runCli(process.argv.slice(2), { migrationsDir, tenantInit: firstOwner, appPlans: helpdeskPlans });
