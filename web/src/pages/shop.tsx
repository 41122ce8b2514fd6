/** The pizza shop: the menu, the cart (a visitor has one too), checkout, and the orders' status. */
import { lineLimit } from '../../../src/shop/cart.ts';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, call, money, newIdempotencyKey, served, type Answer, type ResponseOf } from '../api.ts';
import { useSession } from '../session.ts';
import { Empty, ErrorLine, ServedBy, useAction } from '../ui.tsx';

type MenuItem = ResponseOf<'get', '/api/menu'>['items'][number];
type Cart = ResponseOf<'get', '/api/cart'>;
type Order = ResponseOf<'get', '/api/orders'>['orders'][number];

/** How often pending orders are asked again (the checkout saga runs in the background). */
const ORDER_POLL_MS = 1_000;
/** How often the menu is asked again: its stock moves with everyone's orders (5 s is its max-age). */
const MENU_POLL_MS = 5_000;

/** The menu, revalidated (a 304 when unchanged): it is cacheable for 5 s, and stock moves. */
const loadMenu = () => call(api.GET('/api/menu', { cache: 'no-cache' }));

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

  /** The menu (its stock moves with every order) and the cart, as they are now. */
  const load = async () => {
    const [m, c] = await Promise.all([loadMenu(), served(api.GET('/api/cart'))]);
    setMenu(m.items);
    setCart(c.body);
    setServedBy(c.servedBy);
  };
  useEffect(() => void run(load), [signedIn]);
  useEffect(() => {
    const timer = setInterval(
      () =>
        loadMenu().then(
          (m) => setMenu(m.items),
          () => undefined,
        ),
      MENU_POLL_MS,
    );
    return () => clearInterval(timer);
  }, []);

  const pending = orders.some((o) => o.status === 'pending');
  useEffect(() => {
    if (!signedIn) return setOrders([]);
    const loadOrders = () =>
      call(api.GET('/api/orders')).then(
        (r) => setOrders(r.orders),
        () => undefined,
      );
    void loadOrders();
    if (!pending) return;
    const timer = setInterval(() => void loadOrders(), ORDER_POLL_MS);
    return () => clearInterval(timer);
  }, [signedIn, pending]);

  // An order that settles changes the cart (confirmed: its lines leave it; cancelled: they stay)
  // and the stock: show both as they are now, quietly (an error here is not the visitor's doing).
  const wasPending = useRef(false);
  useEffect(() => {
    if (wasPending.current && !pending) load().catch(() => undefined);
    wasPending.current = pending;
  }, [pending]);

  const checkout = () =>
    run(async () => {
      const { order } = await call(
        api.POST('/api/orders', { body: {}, params: { header: { 'Idempotency-Key': newIdempotencyKey() } } }),
      );
      setOrders((list) => [order, ...list.filter((o) => o.id !== order.id)]);
    });

  return (
    <div class="grid">
      <section class="card" aria-labelledby="menu-title">
        <h2 id="menu-title">Menu</h2>
        {menu === null ? (
          <p aria-busy="true">Loading the menu…</p>
        ) : (
          <ul class="rows">
            {menu.map((item) => {
              const full = (cart?.items.find((l) => l.itemId === item.id)?.qty ?? 0) >= lineLimit(item);
              return (
                <li key={item.id}>
                  <span>
                    {item.name} <small>{money(item.priceCents)}</small> <small>({item.stock} left)</small>
                  </span>
                  <button
                    type="button"
                    disabled={busy || full}
                    title={item.stock === 0 ? 'sold out' : full ? 'your cart holds all there is' : undefined}
                    onClick={() =>
                      void cartCall(() => api.POST('/api/cart/items', { body: { itemId: item.id, qty: 1 } }))
                    }
                  >
                    Add {item.name}
                  </button>
                </li>
              );
            })}
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
              pending ? (
                <p class="hint" role="status">
                  Your order is being placed: these lines leave the cart when it is confirmed.
                </p>
              ) : (
                <button type="button" disabled={busy} onClick={() => void checkout()}>
                  Check out
                </button>
              )
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
