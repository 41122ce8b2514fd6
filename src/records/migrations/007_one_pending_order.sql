-- A user has at most one order in checkout at a time. The cart keeps its lines until the order
-- is confirmed (a cancelled order leaves the cart as it was), so a second checkout while one is
-- pending would order the same lines twice. This index refuses it, also when two arrive at once.
CREATE UNIQUE INDEX orders_one_pending ON orders (user_id) WHERE status = 'pending';
