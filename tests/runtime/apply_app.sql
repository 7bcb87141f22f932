-- apply_app.sh's clients: the shop application of plans/app/, one version
-- per migration.  Version 0 runs on plans/app/schema.sql; version N is the
-- code written for the shape migration N leaves (its search_path is the
-- version schema of migration N, then public), and it runs from N's expand
-- until the switch gate of N + 1, where the test stops it.  So while
-- migration N runs, version N - 1 (the old one, through the tables) and
-- version N (the new one, through N's views) write side by side.
--
-- Each line is "FIRST-LAST<TAB>statement": the versions that run the
-- statement (LAST empty: every version from FIRST on).  apply_app.sh writes
-- one zdm_traffic script per version from it.  $1 is a random id in 1..2000
-- (the clients' customers and orders), $2 a string unique to the run that
-- starts with the version ("v07-1-42"); see tests/lib/traffic.c.
--
-- Every statement must succeed in every phase its version runs in, which
-- holds the clients to what each migration binds from its expand on: an
-- order's customer exists (004: no customer is ever deleted), emails are
-- unique (005), quantities are positive (008).  Version 15 makes drafts
-- of some products, without a title (015), which version 14, still
-- running, reads.  Version 16 records customer events in the table 016
-- creates.

-- customers
0-6	SELECT id, name, email FROM customers WHERE id = $1
7-9	SELECT id, first_name, last_name, email, phone FROM customers WHERE id = $1
10-	SELECT id, first_name, last_name, email_address, phone FROM customers WHERE id = $1
0-0	INSERT INTO customers (name, email) VALUES ($2 || ' Client', $2 || '@shop.example')
1-6	INSERT INTO customers (name, email, phone) VALUES ($2 || ' Client', $2 || '@shop.example', '+1 555 0199')
7-9	INSERT INTO customers (first_name, last_name, email, phone) VALUES ($2, 'Client', $2 || '@shop.example', '+1 555 0199')
10-	INSERT INTO customers (first_name, last_name, email_address, phone) VALUES ($2, 'Client', $2 || '@shop.example', '+1 555 0199')
0-9	UPDATE customers SET email = $2 || '@example.org' WHERE id = $1
10-	UPDATE customers SET email_address = $2 || '@example.org' WHERE id = $1
0-6	UPDATE customers SET name = 'Ann ' || $2 WHERE id = $1
7-	UPDATE customers SET first_name = 'Ann', last_name = $2 WHERE id = $1
1-	UPDATE customers SET phone = '+1 555 ' || $1 WHERE id = $1
0-12	UPDATE customers SET fax = '+1 555 0100 ' || $1 WHERE id = $1

-- products (1..200 are the clients')
0-	SELECT id, sku, title, price FROM products WHERE id = $1 % 500 + 1
15-	UPDATE products SET title = NULL WHERE id = $1 % 200 + 1
0-5	UPDATE products SET price = price + 1 WHERE id = $1 % 200 + 1
6-	UPDATE products SET price = price + 0.01 WHERE id = $1 % 200 + 1

-- orders and their items: an order with one item in one statement
0-1	WITH o AS (INSERT INTO orders (customer_id, status, ship_street, ship_city) VALUES ($1, CASE WHEN $1 % 2 = 0 THEN 'paid' END, $2 || ' Street', 'Springfield') RETURNING id) INSERT INTO order_items (order_id, product_id, quantity, price) SELECT id, $1 % 500 + 1, 1 + $1 % 3, 250 FROM o
2-2	WITH o AS (INSERT INTO orders (customer_id, status, ship_street, ship_city) VALUES ($1, 'paid', $2 || ' Street', 'Springfield') RETURNING id) INSERT INTO order_items (order_id, product_id, quantity, price) SELECT id, $1 % 500 + 1, 1 + $1 % 3, 250 FROM o
3-8	WITH o AS (INSERT INTO orders (customer_id, ship_street, ship_city) VALUES ($1, $2 || ' Street', 'Springfield') RETURNING id) INSERT INTO order_items (order_id, product_id, quantity, price) SELECT id, $1 % 500 + 1, 1 + $1 % 3, 250 FROM o
9-10	WITH o AS (INSERT INTO orders (customer_id, ship_address) VALUES ($1, $2 || ' Street, Springfield') RETURNING id) INSERT INTO order_items (order_id, product_id, quantity, price) SELECT id, $1 % 500 + 1, 1 + $1 % 3, 250 FROM o
11-	WITH o AS (INSERT INTO orders (customer_id, ship_address) VALUES ($1, $2 || ' Street, Springfield') RETURNING id) INSERT INTO order_lines (order_id, product_id, quantity, price) SELECT id, $1 % 500 + 1, 1 + $1 % 3, 250 FROM o
0-13	UPDATE orders SET status = 'shipped' WHERE id = $1
14-	UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = $1
14-	SELECT id, status, updated_at FROM orders WHERE customer_id = $1
0-8	UPDATE orders SET ship_street = $2 || ' Road', ship_city = 'Shelbyville' WHERE id = $1
9-	UPDATE orders SET ship_address = $2 || ' Road, Shelbyville' WHERE id = $1
0-10	UPDATE order_items SET quantity = quantity + 1 WHERE order_id = $1
11-	UPDATE order_lines SET quantity = quantity + 1 WHERE order_id = $1
0-10	SELECT o.id, o.status, sum(i.quantity * i.price) FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.customer_id = $1 GROUP BY o.id, o.status
11-	SELECT o.id, o.status, sum(l.quantity * l.price) FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.customer_id = $1 GROUP BY o.id, o.status
0-10	WITH d AS (DELETE FROM orders WHERE id = $1 + 100000 RETURNING id) DELETE FROM order_items WHERE order_id IN (SELECT id FROM d)
11-	WITH d AS (DELETE FROM orders WHERE id = $1 + 100000 RETURNING id) DELETE FROM order_lines WHERE order_id IN (SELECT id FROM d)

-- customer events (016)
16-	INSERT INTO customer_events (customer_id, kind) VALUES ($1, 'visit ' || $2)
16-	SELECT count(*) FROM customer_events WHERE customer_id = $1
