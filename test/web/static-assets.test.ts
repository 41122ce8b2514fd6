/**
 * The web UI's files through the balancer: the page is revalidated by ETag, every asset it names
 * carries its content hash and is cached as immutable, every server publishes the same URLs and
 * bytes (so a CDN sees one asset, whichever server it asked), and a killed server changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { startCluster, type Cluster } from '../support/cluster.ts';

const pin = (server: string) => ({ 'x-statewise-server': server });

describe('web UI static files', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ servers: 2 });
  });
  after(() => cluster?.stop());

  const get = (path: string, headers: Record<string, string> = {}) => fetch(cluster.url + path, { headers });

  /** The asset URLs the page names, e.g. /assets/app.Hk3x9q0Lm2Ab.css. */
  const assetUrls = (html: string) => [...html.matchAll(/"(\/assets\/[^"]+)"/g)].map((m) => m[1]!);

  it('serves the page with an ETag, revalidated, and 304 on If-None-Match', async () => {
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    assert.ok(page.headers.get('x-served-by'));
    const etag = page.headers.get('etag')!;
    assert.match(etag, /^"[\w-]+"$/);
    const again = await get('/', { 'if-none-match': etag });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), '');
  });

  it('names fingerprinted assets, cached as immutable, the same on every server', async () => {
    const html = await (await get('/', pin('s1'))).text();
    const urls = assetUrls(html);
    assert.deepEqual(urls.map((u) => u.replace(/\.[\w-]{12}\./, '.*.')).sort(), [
      '/assets/app.*.css',
      '/assets/app.*.js',
      '/assets/favicon.*.svg',
    ]);
    for (const url of urls) {
      const [one, two] = await Promise.all([get(url, pin('s1')), get(url, pin('s2'))]);
      for (const response of [one, two]) {
        assert.equal(response.status, 200, url);
        assert.equal(response.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      }
      assert.deepEqual([one.headers.get('x-served-by'), two.headers.get('x-served-by')], ['s1', 's2']);
      assert.equal(one.headers.get('etag'), two.headers.get('etag'));
      assert.equal(await one.text(), await two.text());
    }
    assert.equal(await (await get('/', pin('s2'))).text(), html, 'both servers publish the same page');
  });

  it('refuses names that are not published: the unhashed name, a stale hash, a path outside', async () => {
    for (const path of ['/assets/app.css', '/assets/app.AAAAAAAAAAAA.css']) {
      const response = await get(path);
      assert.equal(response.status, 404, path);
      const body = (await response.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'not_found');
    }
    // An encoded slash is refused before any route sees it (400), or not found; never a file.
    for (const path of ['/assets/..%2Fpackage.json', '/assets/..%2F..%2Fpackage.json']) {
      const response = await get(path);
      assert.ok([400, 404].includes(response.status), `${path}: ${response.status}`);
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(typeof body.error.message, 'string', JSON.stringify(body));
    }
  });

  it('keeps serving the same page and assets after SIGKILL of the server that served them', async () => {
    const first = await get('/', pin('s1'));
    const html = await first.text();
    await cluster.kill('s1');
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('x-served-by'), 's2');
    assert.equal(await page.text(), html);
    for (const url of assetUrls(html)) assert.equal((await get(url)).status, 200, url);
  });

  it('keeps the first load under 200 KB of gzipped JavaScript', async () => {
    const html = await (await get('/')).text();
    let gzipped = 0;
    let raw = 0;
    for (const url of assetUrls(html).filter((u) => u.endsWith('.js'))) {
      const body = Buffer.from(await (await get(url)).arrayBuffer());
      raw += body.length;
      gzipped += gzipSync(body).length;
    }
    console.log(
      `web app JavaScript on first load: ${(raw / 1024).toFixed(1)} KB, ${(gzipped / 1024).toFixed(1)} KB gzipped`,
    );
    assert.ok(raw > 0, 'the page names its script');
    assert.ok(gzipped < 200 * 1024, `${gzipped} bytes gzipped`);
  });
});
