// The landing page: who served it, who you are, what the shop sells. Every answer names its server.
const $ = (id) => document.getElementById(id);

async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  $('served-by').textContent = response.headers.get('x-served-by') ?? '?';
  return { status: response.status, body: await response.json() };
}

const me = await getJson('/api/me');
$('me').textContent =
  me.status === 200
    ? `Signed in as ${me.body.user.username}.`
    : 'Not signed in (POST /api/auth/register or /api/auth/login).';

const menu = await getJson('/api/menu');
for (const item of menu.body.items ?? []) {
  const li = document.createElement('li');
  li.textContent = `${item.name}: ${(item.priceCents / 100).toFixed(2)} (${item.stock} left)`;
  $('menu').append(li);
}
