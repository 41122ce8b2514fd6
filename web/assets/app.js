// The landing page: who served it, who you are, what the shop sells. Every answer names its server.
// Runs under the page's Content-Security-Policy: no inline script or style, same-origin requests only.
// When done, <html data-state> is "ready" (or "failed"), which tests and tools can wait for.
const $ = (id) => document.getElementById(id);

async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  $('served-by').textContent = response.headers.get('x-served-by') ?? '?';
  return { status: response.status, body: await response.json() };
}

try {
  // GET /web/session answers 200 whether or not anyone is signed in, so a first visit asks
  // nothing that fails (GET /api/me would answer 401, which browsers log as an error).
  const session = await getJson('/web/session');
  $('me').textContent =
    session.status !== 200
      ? `Could not check your session (HTTP ${session.status}).`
      : session.body.user
        ? `Signed in as ${session.body.user.username}.`
        : 'Not signed in (POST /api/auth/register or /api/auth/login).';

  const menu = await getJson('/api/menu');
  for (const item of menu.body.items ?? []) {
    const li = document.createElement('li');
    li.textContent = `${item.name}: ${(item.priceCents / 100).toFixed(2)} (${item.stock} left)`;
    $('menu').append(li);
  }
  document.documentElement.dataset.state = 'ready';
} catch (error) {
  document.documentElement.dataset.state = 'failed';
  throw error;
}
