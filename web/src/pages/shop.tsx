/** The pizza shop: the menu, the cart (a visitor has one too), checkout, and the orders' status. */
import { useEffect, useState } from 'preact/hooks';
import { api, call, money, newIdempotencyKey, served, type Answer, type ResponseOf } from '../api.ts';
import { useSession } from '../session.ts';
import { Empty, ErrorLine, ServedBy, useAction } from '../ui.tsx';

type MenuItem = ResponseOf<'get', '/api/menu'>['items'][number];
type Cart = ResponseOf<'get', '/api/cart'>;
type Order = ResponseOf<'get', '/api/orders'>['orders'][number];

/** How often pending orders are asked again (the checkout saga runs in the background). */
const ORDER_POLL_MS = 1_000;

export function ShopPage() {
  const session = useSession();
  const [menu, setMenu] = useState<MenuItem[] | null>(null);
  const [cart, setCart] = useState<Cart | null>(null);
  const [orders, setOrders] = useState<Order[]>([]);
  const [servedBy, setServedBy] = useState<string | null>(null);
  const { busy, error, run } = useAction();
  const signedIn = session.status === 'ready' && session.user !== null;

  /** A change to the cart: every one answers the whole cart. */
  const cartCall = (change: () => Promise<Answer<Cart>>) =>
    run(async () => {
      const answer = await served(change());
      setCart(answer.body);
      setServedBy(answer.servedBy);
    });

  useEffect(() => {
    void run(async () => {
      const [m, c] = await Promise.all([call(api.GET('/api/menu')), served(api.GET('/api/cart'))]);
      setMenu(m.items);
      setCart(c.body);
      setServedBy(c.servedBy);
    });
  }, [signedIn]);

  useEffect(() => {
    if (!signedIn) return setOrders([]);
    const load = () =>
      call(api.GET('/api/orders')).then(
        (r) => setOrders(r.orders),
        () => undefined,
      );
    void load();
    const timer = setInterval(() => {
      if (orders.some((o) => o.status === 'pending')) void load();
    }, ORDER_POLL_MS);
    return () => clearInterval(timer);
  }, [signedIn, orders.some((o) => o.status === 'pending')]);

  const checkout = () =>
    run(async () => {
      const { order } = await call(
        api.POST('/api/orders', { body: {}, params: { header: { 'Idempotency-Key': newIdempotencyKey() } } }),
      );
      setOrders((list) => [order, ...list.filter((o) => o.id !== order.id)]);
      setCart(await call(api.GET('/api/cart')));
    });

  return (
    <div class="grid">
      <section class="card" aria-labelledby="menu-title">
        <h2 id="menu-title">Menu</h2>
        {menu === null ? (
          <p aria-busy="true">Loading the menu…</p>
        ) : (
          <ul class="rows">
            {menu.map((item) => (
              <li key={item.id}>
                <span>
                  {item.name} <small>{money(item.priceCents)}</small> <small>({item.stock} left)</small>
                </span>
                <button
                  type="button"
                  disabled={busy || item.stock === 0}
                  onClick={() =>
                    void cartCall(() => api.POST('/api/cart/items', { body: { itemId: item.id, qty: 1 } }))
                  }
                >
                  Add {item.name}
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section class="card" aria-labelledby="cart-title">
        <h2 id="cart-title">
          Your cart <ServedBy server={servedBy} />
        </h2>
        {cart === null ? (
          <p aria-busy="true">Loading your cart…</p>
        ) : cart.items.length === 0 ? (
          <Empty>Your cart is empty.</Empty>
        ) : (
          <>
            <ul class="rows" aria-label="cart lines">
              {cart.items.map((line) => (
                <li key={line.itemId} data-testid="cart-line">
                  <span>
                    <b>{line.qty}</b> × {line.name} <small>{money(line.qty * line.priceCents)}</small>
                  </span>
                  <button
                    type="button"
                    disabled={busy}
                    onClick={() =>
                      void cartCall(() =>
                        api.DELETE('/api/cart/items/{itemId}', { params: { path: { itemId: line.itemId } } }),
                      )
                    }
                  >
                    Remove {line.name}
                  </button>
                </li>
              ))}
            </ul>
            <p>
              Total <b data-testid="cart-total">{money(cart.totalCents)}</b>
            </p>
            {signedIn ? (
              <button type="button" disabled={busy} onClick={() => void checkout()}>
                Check out
              </button>
            ) : (
              <p class="hint">
                <a href="#/account">Sign in</a> to check out: your cart comes with you.
              </p>
            )}
          </>
        )}
        <ErrorLine error={error} />
      </section>
      {signedIn && (
        <section class="card" aria-labelledby="orders-title">
          <h2 id="orders-title">Your orders</h2>
          {orders.length === 0 ? (
            <Empty>No orders yet.</Empty>
          ) : (
            <ul class="rows">
              {orders.map((o) => (
                <li key={o.id}>
                  <span>
                    {money(o.totalCents)} <span class={`status ${o.status}`}>{o.status}</span>
                    {o.reason && <small> {o.reason}</small>}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
    </div>
  );
}
