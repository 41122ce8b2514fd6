/**
 * The articles' lesson, watched in a real browser (Debian's Chromium) against the whole system:
 * sign up, fill a cart, read which server served it, kill that server from the dashboard. In
 * stateless mode the cart and the sign-in are still there; in stateful mode both are gone. And the
 * ATM story: withdraw at one ATM, every ATM shows the same balance.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { startCluster, type Cluster } from '../support/cluster.ts';

const TIMEOUT_MS = 15_000;

/** Runs `work` in a page of its own browser context (no cookies shared with other tests), then closes it. */
async function inFreshPage(browser: Browser, work: (page: Page) => Promise<void>): Promise<void> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    await work(page);
  } finally {
    await context.close();
  }
}

async function signUp(page: Page, url: string, username: string): Promise<void> {
  await page.goto(`${url}/#/account`);
  const form = page.getByRole('form', { name: 'Sign up' });
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Password').fill('a long browser password');
  await form.getByRole('button', { name: 'Sign up' }).click();
  await page.getByRole('heading', { name: 'Your sessions' }).waitFor();
}

/** Adds the first pizza twice; returns the server that answered the cart. */
async function fillCart(page: Page, url: string): Promise<string> {
  await page.goto(`${url}/#/shop`);
  const add = page.getByRole('button', { name: 'Add Margherita' });
  await add.click();
  await page.getByTestId('cart-line').waitFor();
  await add.click();
  await page.getByTestId('cart-line').filter({ hasText: '2 × Margherita' }).waitFor();
  return (await page.getByTestId('served-by').textContent())!;
}

/** Kills the server from the dashboard; returns the event log's line about it. */
async function killFromDashboard(page: Page, url: string, server: string): Promise<string> {
  await page.goto(`${url}/#/cluster`);
  await page.getByRole('button', { name: `Kill ${server}` }).click();
  await page
    .getByRole('article', { name: `server ${server}` })
    .locator('.status', { hasText: 'down' })
    .waitFor();
  const line = page.getByRole('listitem').filter({ hasText: `${server} killed (SIGKILL)` });
  await line.waitFor();
  return (await line.textContent()) ?? '';
}

for (const mode of ['stateless', 'stateful'] as const) {
  describe(`the web app in ${mode} mode`, () => {
    let cluster: Cluster;
    let browser: Browser;
    before(async () => {
      [cluster, browser] = await Promise.all([
        startCluster({ mode, servers: 3, env: { SW_LOGIN_IP_LIMIT: '100000' } }),
        launchChromium(),
      ]);
    });
    after(async () => {
      await browser?.close();
      await cluster?.stop();
    });

    if (mode === 'stateless') {
      it('withdraw at one ATM: every ATM shows the same balance', async () => {
        await inFreshPage(browser, async (page) => {
          await signUp(page, cluster.url, 'atm-user');
          await page.goto(`${cluster.url}/#/bank`);
          await page.getByLabel('Use the ATM at').selectOption('s2');
          await page.getByLabel('Withdraw amount').fill('12.34');
          await page.getByRole('button', { name: 'Withdraw', exact: true }).click();
          const done = page.getByRole('status').filter({ hasText: 'withdraw done' });
          await done.waitFor();
          assert.equal(await done.getByTestId('served-by').textContent(), 's2', 'the chosen ATM ran it');
          for (const id of ['s1', 's2', 's3']) {
            await page.getByTestId(`balance-${id}`).filter({ hasText: '987.66' }).waitFor();
          }
        });
      });
    }

    if (mode === 'stateless') {
      it('checks out: the order goes from pending to confirmed, then the cart empties and the stock drops', async () => {
        await inFreshPage(browser, async (page) => {
          await signUp(page, cluster.url, 'shop-user');
          await page.goto(`${cluster.url}/#/shop`);
          const margherita = page.getByRole('listitem').filter({ hasText: 'Add Margherita' });
          const stockText = (await margherita.locator('small', { hasText: 'left' }).textContent())!;
          const stock = Number(/\d+/.exec(stockText)![0]);
          await fillCart(page, cluster.url);
          await page.getByRole('button', { name: 'Check out' }).click();
          // Pending: the page says so instead of offering a second checkout (the saga may already have
          // settled when this reads, so it is not asserted that the button is absent right now).
          await page.getByText('Your order is being placed').waitFor();
          await page.locator('.status.confirmed').waitFor();
          await page.getByText('Your cart is empty.').waitFor();
          await margherita.getByText(`(${stock - 2} left)`).waitFor();
        });
      });
    }

    it(
      mode === 'stateless'
        ? 'the cart and the sign-in survive the SIGKILL of the server that served them'
        : 'the cart and the sign-in die with the server that held them',
      async () => {
        await inFreshPage(browser, async (page) => {
          await signUp(page, cluster.url, `cart-${mode}`);
          const server = await fillCart(page, cluster.url);
          assert.match(server, /^s[123]$/);
          // Killed at once: the count is asked of the server at the kill, not read from a sample.
          const logged = await killFromDashboard(page, cluster.url, server);
          // The event log counts what the kill cost: the sessions only that server held.
          if (mode === 'stateless') assert.match(logged, /: 0 sessions lost \(they live in postgres\)/);
          else assert.match(logged, /: [1-9]\d* sessions lost with its memory/);

          await page.goto(`${cluster.url}/#/shop`);
          if (mode === 'stateless') {
            await page.getByTestId('cart-line').filter({ hasText: '2 × Margherita' }).waitFor();
            assert.notEqual(await page.getByTestId('served-by').textContent(), server);
            assert.match((await page.locator('header .who').textContent()) ?? '', /Signed in as cart-stateless/);
          } else {
            await page.getByText('Your cart is empty.').waitFor();
            assert.notEqual(await page.getByTestId('served-by').textContent(), server);
            // The page learns it from the first answer that needs a user (a 401): the header follows.
            await page.locator('header .who', { hasText: /^Sign in$/ }).waitFor();
          }
        });
      },
    );

    const other = mode === 'stateless' ? 'stateful' : 'stateless';
    it(`switches the cluster to ${other} from the dashboard, after saying what it costs`, async () => {
      await inFreshPage(browser, async (page) => {
        const asked: string[] = [];
        page.on('dialog', (dialog) => {
          asked.push(dialog.message());
          void dialog.accept();
        });
        await page.goto(`${cluster.url}/#/cluster`);
        await page.getByTestId('mode').filter({ hasText: mode }).waitFor();
        await page.getByRole('button', { name: `Switch to ${other}` }).click();
        await page
          .getByRole('listitem')
          .filter({ hasText: `now ${other}` })
          .waitFor({ timeout: 60_000 });
        await page.getByTestId('mode').filter({ hasText: other }).waitFor();
        await page
          .getByTestId('store')
          .filter({ hasText: other === 'stateful' ? 'memory' : 'postgres' })
          .waitFor();
        assert.match(
          asked.join(),
          other === 'stateless' ? /carts the servers hold in memory are lost/ : /sign in again/,
        );
        await page.getByRole('button', { name: `Switch to ${mode}` }).waitFor();
      });
    });
  });
}
