/**
 * The web UI in a real browser (Debian's Chromium through playwright-core) against the whole
 * system (`npm start`: balancer and app servers): a first visit and a signed-in visit log no
 * console error, throw nothing, and have no failed request; the document carries its CSP, which
 * Chromium enforces (an inline script is refused and reported).
 *
 * Chromium: test/support/chromium.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import axe from 'axe-core';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { startCluster, type Cluster } from '../support/cluster.ts';

/** Where the pages' screenshots are kept (test artifacts; a few are committed under docs/). */
const SCREENSHOTS = process.env.STATEWISE_SCREENSHOTS ?? join('test-artifacts', 'screenshots');
/** Bounds every wait on the browser: the page's script needs two small requests. */
const PAGE_TIMEOUT_MS = 15_000;

interface Visit {
  page: Page;
  document: Response;
  /** Console errors, uncaught exceptions, failed requests and answers >= 400, in order. */
  problems: string[];
  /** Every answer the page got, as `status path`, in order. */
  answers: string[];
}

describe('web UI in Chromium', () => {
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

  /** Opens the page in `context`, recording every problem, and waits until its script has run. */
  async function visit(context: BrowserContext): Promise<Visit> {
    const page = await context.newPage();
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    const problems: string[] = [];
    const answers: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()} (${message.location().url})`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.on('requestfailed', (request) =>
      problems.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`),
    );
    page.on('response', (response) => {
      answers.push(`${response.status()} ${new URL(response.url()).pathname}`);
      if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
    });
    const document = await page.goto(cluster.url + '/', { waitUntil: 'load', timeout: PAGE_TIMEOUT_MS });
    assert.ok(document, 'the page loaded');
    // The page's script marks the document when it is done (or has failed): a DOM condition.
    await page
      .locator('html[data-state]')
      .waitFor({ state: 'attached', timeout: PAGE_TIMEOUT_MS })
      .catch((error: Error) => {
        throw new Error(`the page's script did not finish: ${error.message}\nproblems:\n${problems.join('\n')}`);
      });
    // Let the browser settle pending requests (the favicon) before counting: bounded, no sleep.
    await page.waitForLoadState('networkidle', { timeout: PAGE_TIMEOUT_MS });
    return { page, document, problems, answers };
  }

  it('a first visit logs no error and shows the menu and who served it', async () => {
    const context = await browser.newContext();
    try {
      const { page, document, problems, answers } = await visit(context);
      assert.deepEqual(problems, [], `a first visit has no problems:\n${problems.join('\n')}`);
      // The icon the page links is fetched (so Chromium does not guess /favicon.ico).
      assert.ok(
        answers.some((a) => /^200 \/assets\/favicon\.[\w-]{12}\.svg$/.test(a)),
        answers.join('\n'),
      );
      assert.ok(!answers.some((a) => a.endsWith(' /favicon.ico')), answers.join('\n'));
      assert.equal(await page.getAttribute('html', 'data-state'), 'ready');
      assert.equal(await page.getByRole('link', { name: 'Sign in' }).count(), 1, 'a visitor is offered to sign in');
      assert.ok((await page.getByRole('button', { name: /^Add / }).count()) > 0, 'the menu is listed');
      assert.equal(await page.getByTestId('last-served-by').textContent(), 's1');

      const headers = await document.allHeaders();
      assert.equal(document.status(), 200);
      assert.match(headers['content-security-policy'] ?? '', /script-src 'self'/);
      assert.doesNotMatch(headers['content-security-policy'] ?? '', /unsafe-inline|unsafe-eval/);
      assert.equal(headers['x-content-type-options'], 'nosniff');
      assert.equal(headers['referrer-policy'], 'no-referrer');
    } finally {
      await context.close();
    }
  });

  it('a signed-in visit greets the user by name and logs no error', async () => {
    const context = await browser.newContext();
    try {
      // The context's request API shares the browser's cookie jar: the page sees the session.
      const registered = await context.request.post(cluster.url + '/api/auth/register', {
        data: { username: 'chromium-user', password: 'a long enough password' },
        timeout: PAGE_TIMEOUT_MS,
      });
      assert.equal(registered.status(), 201, await registered.text());
      const { page, problems } = await visit(context);
      assert.deepEqual(problems, [], `a signed-in visit has no problems:\n${problems.join('\n')}`);
      assert.equal(await page.locator('header .who').textContent(), 'Signed in as chromium-user');
    } finally {
      await context.close();
    }
  });

  it('Chromium enforces the CSP: an inline script is refused and reported', async () => {
    const context = await browser.newContext();
    try {
      const { page } = await visit(context);
      // Runs in the page (as a string: this project compiles without the DOM library). Adding an
      // inline script must fire a securitypolicyviolation event and leave the script unrun.
      const outcome = await page.evaluate<{ directive: string; ran: boolean }>(`
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no securitypolicyviolation event')), ${PAGE_TIMEOUT_MS});
          document.addEventListener('securitypolicyviolation', (event) => {
            clearTimeout(timer);
            resolve({ directive: event.effectiveDirective, ran: window.inlineRan === true });
          });
          const script = document.createElement('script');
          script.textContent = 'window.inlineRan = true;';
          document.body.append(script);
        })
      `);
      assert.deepEqual(outcome, { directive: 'script-src-elem', ran: false });
    } finally {
      await context.close();
    }
  });

  it('a person signs up with the keyboard alone', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(PAGE_TIMEOUT_MS);
      await page.goto(`${cluster.url}/#/account`);
      await page.getByRole('form', { name: 'Sign up' }).waitFor();
      const focused = () => page.evaluate<string>('document.activeElement?.id ?? ""');
      for (let presses = 0; (await focused()) !== 'register-username'; presses++) {
        assert.ok(presses < 20, 'Tab reaches the sign-up form');
        await page.keyboard.press('Tab');
      }
      await page.keyboard.type('keyboard-user');
      await page.keyboard.press('Tab');
      // Exactly the API's minimum: the form asks for no more than the server does.
      await page.keyboard.type('ten chars!');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Your sessions' }).waitFor();
      assert.equal(await page.locator('header .who').textContent(), 'Signed in as keyboard-user');
    } finally {
      await context.close();
    }
  });

  it('every page passes an axe-core scan with no serious or critical violation (screenshots kept)', async () => {
    // axe is injected as an inline script, which the page's CSP refuses: this context bypasses it.
    const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1200, height: 900 } });
    try {
      const registered = await context.request.post(cluster.url + '/api/auth/register', {
        data: { username: 'axe-user', password: 'a long enough password' },
      });
      assert.equal(registered.status(), 201);
      const page = await context.newPage();
      page.setDefaultTimeout(PAGE_TIMEOUT_MS);
      await mkdir(SCREENSHOTS, { recursive: true });
      const findings: string[] = [];
      for (const [view, ready] of [
        ['account', 'Your sessions'],
        ['shop', 'Menu'],
        ['bank', 'Balance at every ATM'],
        ['chat', 'Rooms'],
        ['cluster', 'Events'],
      ] as const) {
        await page.goto(`${cluster.url}/#/${view}`);
        await page.getByRole('heading', { name: ready }).waitFor();
        await page.waitForLoadState('networkidle');
        await page.addScriptTag({ content: axe.source });
        const { violations, passes } = await page.evaluate<{
          violations: Array<{ id: string; impact: string; help: string; nodes: unknown[] }>;
          passes: number;
        }>(
          `axe.run(document).then((r) => ({ passes: r.passes.length, violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target) })) }))`,
        );
        assert.ok(passes > 10, `axe ran its rules on ${view} (${passes} passed)`);
        for (const v of violations) {
          if (v.impact === 'serious' || v.impact === 'critical') {
            findings.push(`${view}: ${v.id} (${v.impact}) ${v.help}: ${JSON.stringify(v.nodes)}`);
          }
        }
        await page.screenshot({ path: join(SCREENSHOTS, `${view}.png`), fullPage: true });
      }
      assert.deepEqual(findings, []);
    } finally {
      await context.close();
    }
  });
});
