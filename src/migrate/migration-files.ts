import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

export interface MigrationFile {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Loads `NNNN_name.sql` files in version order; a gap or duplicate version is an error. */
export async function loadMigrations(dir: string): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
  const files: MigrationFile[] = [];
  for (const file of names) {
    const m = FILE.exec(file);
    if (!m) throw new Error(`migration file ${file} in ${dir} is not named NNNN_name.sql`);
    const sql = await readFile(path.join(dir, file), 'utf8');
    const version = Number(m[1]);
    if (files.some((f) => f.version === version)) throw new Error(`duplicate migration version ${version} in ${dir}`);
    const previous = files[files.length - 1];
    if (previous && version !== previous.version + 1) {
      throw new Error(`gap in migration versions in ${dir}: ${file} follows version ${previous.version}`);
    }
    files.push({ version, name: m[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return files;
}
