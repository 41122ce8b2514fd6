/**
 * The web UI's security headers, in process (app.inject): a Content-Security-Policy on the page
 * that allows no inline script and no third-party origin, nosniff on every answer of the app
 * server (page, assets, API, errors), no Referer leaked from the page, no framing; the page itself
 * has nothing inline that the policy would block; and GET /web/session, which tells the page who
 * is signed in without a 401 when nobody is.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestServer } from '../support/app.ts';

type Apps = Awaited<ReturnType<typeof startApp>>;

/** A policy's directives: `script-src 'self'` -> Map { 'script-src' => ["'self'"] }. */
function directives(policy: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of policy.split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) out.set(name.toLowerCase(), sources);
  }
  return out;
}

/** The asset URLs the page names, e.g. /assets/app.Hk3x9q0Lm2Ab.css. */
const assetUrls = (html: string) => [...html.matchAll(/"(\/assets\/[^"]+)"/g)].map((m) => m[1]!);

describe('web UI security headers', () => {
  let apps: Apps;
  let server: TestServer;
  before(async () => {
    apps = await startApp({ store: 'memory' });
    server = apps.server;
  });
  after(() => apps?.close());

  const get = (url: string, headers: Record<string, string> = {}) => server.app.inject({ method: 'GET', url, headers });

  it('serves the page with a CSP that allows only this origin and nothing inline', async () => {
    const page = await get('/');
    assert.equal(page.statusCode, 200);
    const policy = page.headers['content-security-policy'];
    assert.equal(typeof policy, 'string', 'GET / has a Content-Security-Policy');
    const csp = directives(String(policy));
    assert.deepEqual(csp.get('default-src'), ["'self'"]);
    assert.deepEqual(csp.get('script-src'), ["'self'"]);
    assert.deepEqual(csp.get('style-src'), ["'self'"]);
    assert.deepEqual(csp.get('connect-src'), ["'self'"]);
    assert.deepEqual(csp.get('object-src'), ["'none'"]);
    assert.deepEqual(csp.get('base-uri'), ["'none'"]);
    assert.deepEqual(csp.get('frame-ancestors'), ["'none'"]);
    for (const [name, sources] of csp) {
      for (const source of sources) {
        assert.ok(
          ["'self'", "'none'", 'data:'].includes(source),
          `${name} allows only this origin (or data: images), not ${source}`,
        );
      }
    }
    assert.ok(!csp.has('report-only'));
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');
    assert.equal(page.headers['x-frame-options'], 'DENY');
  });

  it('keeps the headers on a 304 of the page', async () => {
    const first = await get('/');
    const again = await get('/', { 'if-none-match': String(first.headers.etag) });
    assert.equal(again.statusCode, 304);
    assert.equal(again.headers['content-security-policy'], first.headers['content-security-policy']);
    assert.equal(again.headers['x-content-type-options'], 'nosniff');
  });

  it('has no inline script, inline style or event handler attribute that the CSP would block', async () => {
    const html = (await get('/')).body;
    for (const [tag] of html.matchAll(/<script\b[^>]*>/gi)) {
      assert.match(tag, /\ssrc="\/assets\//, `every script is a same-origin file: ${tag}`);
    }
    assert.doesNotMatch(html, /<script\b[^>]*>[^<\s]/i, 'no script has inline content');
    assert.doesNotMatch(html, /<style\b/i, 'no <style> element');
    assert.doesNotMatch(html, /\sstyle=/i, 'no style attribute');
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no event handler attribute');
    assert.doesNotMatch(html, /javascript:/i, 'no javascript: URL');
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i, 'no third-party origin');
  });

  it('links a fingerprinted SVG favicon, so the browser does not ask for /favicon.ico', async () => {
    const html = (await get('/')).body;
    const icon = /<link\b[^>]*\brel="icon"[^>]*>/i.exec(html)?.[0];
    assert.ok(icon, 'the page links an icon');
    const href = /href="([^"]+)"/.exec(icon)![1]!;
    assert.match(href, /^\/assets\/favicon\.[\w-]{12}\.svg$/);
    const response = await get(href);
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['content-type'], 'image/svg+xml');
    assert.equal(response.headers['cache-control'], 'public, max-age=31536000, immutable');
  });

  it('sends nosniff and no-referrer on every asset the page names', async () => {
    const urls = assetUrls((await get('/')).body);
    assert.ok(urls.length >= 3, `the page names its assets: ${urls.join(', ')}`);
    for (const url of urls) {
      const response = await get(url);
      assert.equal(response.statusCode, 200, url);
      assert.equal(response.headers['x-content-type-options'], 'nosniff', url);
      assert.equal(response.headers['referrer-policy'], 'no-referrer', url);
    }
  });

  it('sends nosniff on API answers and errors, whatever the status', async () => {
    const cases: Array<[string, number]> = [
      ['/api/menu', 200],
      ['/api/me', 401],
      ['/api/no-such-thing', 404],
      ['/assets/app.AAAAAAAAAAAA.css', 404],
      ['/healthz', 200],
    ];
    for (const [url, status] of cases) {
      const response = await get(url);
      assert.equal(response.statusCode, status, url);
      assert.equal(response.headers['x-content-type-options'], 'nosniff', url);
      assert.ok(response.headers['x-served-by'], url);
    }
  });

  it('GET /web/session says who is signed in, 200 either way, never cached', async () => {
    const client = server.client();
    const session = () => client.api.GET('/web/session');
    const signedOut = await session();
    assert.equal(signedOut.response.status, 200);
    assert.deepEqual(signedOut.data, { user: null });
    assert.equal(signedOut.response.headers.get('cache-control'), 'no-store');
    assert.equal(signedOut.response.headers.get('x-content-type-options'), 'nosniff');

    const registered = await client.api.POST('/api/auth/register', {
      body: { username: 'webby', password: 'a long enough password' },
    });
    assert.equal(registered.response.status, 201);
    const signedIn = await session();
    assert.equal(signedIn.response.status, 200);
    assert.deepEqual(signedIn.data, { user: registered.data!.user });
    assert.equal(signedIn.response.headers.get('cache-control'), 'no-store');

    assert.equal((await client.api.POST('/api/auth/logout')).response.status, 204);
    assert.deepEqual((await session()).data, { user: null });
  });

  it('lists GET /web/session in the OpenAPI document', async () => {
    const doc = JSON.parse((await get('/docs/json')).body) as { paths: Record<string, Record<string, unknown>> };
    assert.ok(doc.paths['/web/session']?.get, 'GET /web/session is documented');
  });
});
