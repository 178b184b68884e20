import { runCli } from '../src/cli/run-cli.js';
import { hashPassword } from '../src/index.js';
import { createOwner } from './owner.js';
import { migrationsDir } from './paths.js';

/** The helpdesk's `tenantry` command: the toolkit CLI plus the helpdesk's first owner. */
export const exitCode = await runCli(process.argv.slice(2), {
  migrationsDir,
  onTenantCreated: async (tenantry, _tenant, owner) => {
    if (!owner) return;
    await createOwner(tenantry, owner, await hashPassword(owner.password));
  },
});
