import { v7 as uuidv7 } from 'uuid';
import { runCli } from '../src/cli/run-cli.js';
import { hashPassword } from '../src/index.js';
import { migrationsDir } from './paths.js';

/** The helpdesk's `tenantry` command: the toolkit CLI plus the helpdesk's first owner. */
export const exitCode = await runCli(process.argv.slice(2), {
  migrationsDir,
  onTenantCreated: async (tenantry, _tenant, owner) => {
    if (!owner) return;
    await tenantry.db.query('insert into users (id, email, name, role, password_hash) values ($1, $2, $3, $4, $5)',
      [uuidv7(), owner.email.toLowerCase(), owner.name, 'owner', await hashPassword(owner.password)]);
  },
});
