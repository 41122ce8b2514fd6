/**
 * The docs page for people (GET /docs: Swagger UI on the served document) in a real browser
 * (Debian's Chromium through playwright-core), through the load balancer of the whole system
 * (`npm start`): it renders every operation, loads nothing from another origin, breaks none of its
 * own Content-Security-Policy, and "Try it out" answers with the visitor's session (the cookie of
 * this origin). Screenshots are kept (test-artifacts/screenshots/docs*.png).
 *
 * Chromium: test/support/chromium.ts.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { newUsername, PASSWORD } from '../security/backends.ts';

const SCREENSHOTS = process.env.STATEWISE_SCREENSHOTS ?? join('test-artifacts', 'screenshots');
const PAGE_TIMEOUT_MS = 20_000;

describe('the docs page in Chromium', () => {
  let cluster: Cluster;
  let browser: Browser;
  before(async () => {
    cluster = await startCluster({ servers: 1 });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  it('renders every operation from this origin only, and tries requests with the visitor session', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(PAGE_TIMEOUT_MS);
      const origin = new URL(cluster.url).origin;
      const problems: string[] = [];
      const elsewhere: string[] = [];
      page.on('request', (request) => {
        const url = new URL(request.url());
        if (url.protocol !== 'data:' && url.origin !== origin) elsewhere.push(request.url());
      });
      page.on('console', (message) => {
        // A CSP violation is a console error too.
        if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
      page.on('requestfailed', (request) => problems.push(`failed: ${request.url()}: ${request.failure()?.errorText}`));
      page.on('response', (response) => {
        if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
      });

      const document = await page.goto(`${cluster.url}/docs`, { waitUntil: 'load' });
      assert.equal(document?.status(), 200);
      const csp = String((await document!.allHeaders())['content-security-policy'] ?? '');
      assert.match(csp, /script-src 'self'(;|$)/, 'no inline or foreign script');
      assert.match(csp, /connect-src 'self'(;|$)/, 'requests to this origin only');
      await page.locator('.opblock').nth(29).waitFor();
      const spec = await (await context.request.get(`${cluster.url}/docs/json`)).json();
      const operations = Object.values(spec.paths as Record<string, object>).flatMap((item) => Object.keys(item));
      assert.equal(await page.locator('.opblock').count(), operations.length, 'one block per operation');
      await page.waitForLoadState('networkidle');
      await mkdir(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, 'docs.png') });

      // Sign in in this browser: the session cookie is set for this origin.
      const username = newUsername('docs');
      const status = await page.evaluate(
        async (body) =>
          (
            await fetch('/api/auth/register', {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(body),
            })
          ).status,
        { username, password: PASSWORD },
      );
      assert.equal(status, 201);

      // GET /api/me, tried from the page: 200 with the visitor's user, by the session cookie alone.
      const me = page.locator('#operations-accounts-getMe');
      await me.locator('.opblock-summary').click();
      await me.locator('.try-out__btn').click();
      await me.locator('.execute').click();
      const answer = me.locator('.live-responses-table .response');
      await answer.locator('.response-col_status').filter({ hasText: '200' }).waitFor();
      assert.match(await answer.locator('.response-col_description').innerText(), new RegExp(username));

      await me.evaluate((element) => element.scrollIntoView());
      await page.screenshot({ path: join(SCREENSHOTS, 'docs-try-it-out.png') });

      // GET /_cluster, tried from the page: the supervisor answers it on this same origin (loopback).
      const control = page.locator('#operations-cluster-getCluster');
      await control.locator('.opblock-summary').click();
      await control.locator('.try-out__btn').click();
      await control.locator('.execute').click();
      const view = control.locator('.live-responses-table .response');
      await view.locator('.response-col_status').filter({ hasText: '200' }).waitFor();
      assert.match(await view.locator('.response-col_description').innerText(), /"id": "s1"/);
      assert.deepEqual(elsewhere, [], 'the page loads nothing from another origin');
      assert.deepEqual(problems, [], `the page has no problems:\n${problems.join('\n')}`);
    } finally {
      await context.close();
    }
  });
});
