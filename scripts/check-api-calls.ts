/**
 * `npm run lint:api-calls`: fails when code calls the API or the cluster control API with a raw
 * fetch (`fetch('/api...`, `fetch("/api...`, `` fetch(`/api... `` or `` fetch(`${base}/api... ``,
 * and the same for `/_cluster`) instead of the typed client (src/client), whose types come from the
 * served OpenAPI document: a raw call would not notice a route's schema change. Looks in web/,
 * src/ and test/; src/client and the tests' Browser (test/support/http.ts) are where the requests
 * are really sent. bench/ is exempt on purpose: the benches measure raw HTTP, without a client's
 * work in the figures.
 *
 * In test/ it also fails on a raw call to the API through the tests' clients (Browser and
 * InjectClient, test/support/http.ts and app.ts): `.get(`, `.post(`, `.put(`, `.patch(`,
 * `.delete(` with a quoted or template path starting with /api, or `.request('METHOD', ` (or a
 * variable) then such a path, the path on the same line or the next. Those clients' `api` (the
 * typed client) is the way to call the API; a raw call is only for what the typed client cannot
 * say on purpose (malformed JSON, wrong types, unknown fields, oversized bodies, forged or missing
 * headers, paths outside the documented API), and says so: `// raw: why` on the line of the call
 * or the line just above it.
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

/** A quote or backtick, optionally an interpolated base URL, then /api. */
const API_PATH = String.raw`(['"]|\`(\$\{[^}]*\})?)/api\b`;
/** The tests' raw clients: `.get(` etc. then the path, or `.request(` a method then the path (newlines allowed). */
const RAW_CLIENT_CALL = new RegExp(
  String.raw`\.(?:(?:get|post|put|patch|delete)\(\s*|request\(\s*(?:(['"\`])[A-Za-z]+\1|[\w$.]+)\s*,\s*)` + API_PATH,
  'g',
);
/** Where the tests' raw clients live (they take paths as arguments; no literal calls). */
const RAW_CLIENT_ALLOWED = [join('test', 'support', 'http.ts'), join('test', 'support', 'app.ts')];
const RAW_MARK = '// raw:';

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && /\.(ts|tsx|js|mjs)$/.test(e.name) && !e.parentPath.includes('node_modules'))
    .map((e) => relative(process.cwd(), join(e.parentPath, e.name)));
}

const fetches: string[] = [];
const rawCalls: string[] = [];
for (const root of ROOTS) {
  for (const file of await sources(root)) {
    const rules = RULES.filter(({ allowed }) => !allowed.some((a) => file === a || file.startsWith(a)));
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (rules.some(({ pattern }) => pattern.test(line))) fetches.push(`${file}:${i + 1}: ${line.trim()}`);
    });
    if (root !== 'test' || RAW_CLIENT_ALLOWED.includes(file)) continue;
    for (const match of text.matchAll(RAW_CLIENT_CALL)) {
      // A path template ('/api/orders/{id}', a Map's key, the typed client's own path) is no URL.
      if (/^[^'"`\n]*(^|[^$])\{/.test(text.slice(match.index + match[0].length))) continue;
      const at = text.slice(0, match.index).split('\n').length - 1;
      if (lines[at]!.includes(RAW_MARK) || (at > 0 && lines[at - 1]!.includes(RAW_MARK))) continue;
      rawCalls.push(`${file}:${at + 1}: ${lines[at]!.trim()}`);
    }
  }
}
if (fetches.length > 0) {
  process.stderr.write(
    `Raw fetch calls to the API or /_cluster (use the typed client, src/client/api-client.ts):\n${fetches.join('\n')}\n`,
  );
}
if (rawCalls.length > 0) {
  process.stderr.write(
    `Raw calls to the API in tests (use the client's typed \`api\`, or say why with \`${RAW_MARK}\` on the line or the line above):\n${rawCalls.join('\n')}\n`,
  );
}
if (fetches.length > 0 || rawCalls.length > 0) process.exit(1);
process.stdout.write(
  'no raw fetch calls to the API or /_cluster outside src/client and test/support/http.ts, ' +
    `and every raw test call to the API says why (${RAW_MARK})\n`,
);
