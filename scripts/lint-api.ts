/**
 * `npm run lint:api`: writes the served OpenAPI document (scripts/openapi.ts) to a temporary file
 * and lints it with Redocly CLI under redocly.yaml; exits with the linter's status (errors fail).
 * Offline: no telemetry, no update check.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeOpenApiDocument } from './openapi.ts';

const dir = await mkdtemp(join(tmpdir(), 'statewise-openapi-'));
let code = 1;
try {
  const file = join(dir, 'openapi.json');
  await writeOpenApiDocument(file);
  const redocly = join(process.cwd(), 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
  const child = spawn(process.execPath, [redocly, 'lint', '--config', 'redocly.yaml', file], {
    stdio: 'inherit',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  });
  code = await new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.exit(code);
