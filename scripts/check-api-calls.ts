/**
 * `npm run lint:api-calls`: fails when code calls the API or the cluster control API with a raw
 * fetch (`fetch('/api...`, `fetch("/api...`, `` fetch(`/api... `` or `` fetch(`${base}/api... ``,
 * and the same for `/_cluster`) instead of the typed client (src/client), whose types come from the
 * served OpenAPI document: a raw call would not notice a route's schema change. Looks in web/,
 * src/ and test/; src/client and the tests' Browser (test/support/http.ts) are where the requests
 * are really sent. bench/ is exempt on purpose: the benches measure raw HTTP, without a client's
 * work in the figures.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

const ROOTS = ['web', 'src', 'test'];
const ALLOWED = [
  join('src', 'client') + '/',
  join('test', 'support', 'http.ts'),
  // Its fetch runs inside the docs page in Chromium (page.evaluate): the page's request, not ours.
  join('test', 'api', 'docs-page.test.ts'),
];
/** Exempt from the /_cluster rule only. */
const CONTROL_ALLOWED = [
  // It forges a cross-site request (another site's Origin) to show the control API refuses it.
  join('test', 'e2e', 'external-balancer.test.ts'),
];
/** fetch( then a quote or backtick, optionally an interpolated base URL, then the path. */
const rawFetchOf = (path: string) => new RegExp(`\\bfetch\\(\\s*(['"]|\`(\\$\\{[^}]*\\})?)${path}\\b`);
const RULES = [
  { pattern: rawFetchOf('/api'), allowed: ALLOWED },
  { pattern: rawFetchOf('/_cluster'), allowed: [...ALLOWED, ...CONTROL_ALLOWED] },
];

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && /\.(ts|tsx|js|mjs)$/.test(e.name) && !e.parentPath.includes('node_modules'))
    .map((e) => relative(process.cwd(), join(e.parentPath, e.name)));
}

const found: string[] = [];
for (const root of ROOTS) {
  for (const file of await sources(root)) {
    const rules = RULES.filter(({ allowed }) => !allowed.some((a) => file === a || file.startsWith(a)));
    if (rules.length === 0) continue;
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines.forEach((line, i) => {
      if (rules.some(({ pattern }) => pattern.test(line))) found.push(`${file}:${i + 1}: ${line.trim()}`);
    });
  }
}
if (found.length > 0) {
  process.stderr.write(
    `Raw fetch calls to the API or /_cluster (use the typed client, src/client/api-client.ts):\n${found.join('\n')}\n`,
  );
  process.exit(1);
}
process.stdout.write('no raw fetch calls to the API or /_cluster outside src/client and test/support/http.ts\n');
