-- apply_app.sh's data for the shop of plans/app/schema.sql, and a copy of
-- it in schema fixture_snapshot for the checks (apply_app.check.sql).
--
-- Ids 1..2000 of customers and orders (and products 1..200) are the test
-- clients' (apply_app.sql); rows the clients insert get ids from 100001;
-- the rest nobody touches.  The data is what every migration of plans/app/
-- accepts: names that split and join back (one word, a middle name, a
-- leading space), NULL and unique emails, statuses that are NULL (which
-- the NOT NULL migration fills in), addresses with both parts or neither,
-- every order's customer present, quantities above zero.
INSERT INTO public.customers (id, name, email, fax, created_at)
SELECT g,
       CASE
           WHEN g % 97 = 0 THEN 'Mary Ann Smith' || g
           WHEN g % 83 = 0 THEN 'Cher' || g
           WHEN g % 79 = 0 THEN ' Leading' || g
           WHEN g % 73 = 0 THEN 'Seán O''Brien' || g
           ELSE 'First' || g || ' Last' || g
       END,
       CASE WHEN g % 9 = 0 THEN NULL ELSE 'customer' || g || '@example.com' END,
       CASE WHEN g % 50 = 0 THEN '+1 555 0100 ' || g END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour'
  FROM pg_catalog.generate_series(1, 5000) AS g;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('public.customers', 'id'), 100000);

INSERT INTO public.products (id, sku, title, price)
SELECT g, 'SKU-' || lpad(g::text, 5, '0'), 'Product ' || g,
       CASE WHEN g % 17 = 0 THEN 99 ELSE 100 + (g * 7919) % 100000 END
  FROM pg_catalog.generate_series(1, 500) AS g;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('public.products', 'id'), 100000);

INSERT INTO public.orders (id, customer_id, status, ship_street, ship_city, note, created_at)
SELECT g,
       1 + (g * 7) % 5000,
       CASE WHEN g % 11 = 0 THEN NULL WHEN g % 3 = 0 THEN 'shipped' ELSE 'paid' END,
       CASE WHEN g % 6 <> 0 THEN g || ' Main Street' END,
       CASE WHEN g % 6 <> 0 THEN (ARRAY['Springfield', 'Shelbyville', 'Ogdenville'])[1 + g % 3] END,
       CASE WHEN g % 5 = 0 THEN 'leave at the door' END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
  FROM pg_catalog.generate_series(1, 10000) AS g;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('public.orders', 'id'), 100000);

INSERT INTO public.order_items (order_id, product_id, quantity, price)
SELECT o, 1 + (o * 31 + k) % 500, 1 + (o + k) % 4, 100 + (o * k) % 5000
  FROM pg_catalog.generate_series(1, 10000) AS o,
       pg_catalog.generate_series(1, 2) AS k;

CREATE SCHEMA fixture_snapshot;
-- when the rows were loaded: every order's updated_at (014) is later
CREATE TABLE fixture_snapshot.loaded AS SELECT now() AS at;
CREATE TABLE fixture_snapshot.customers AS TABLE public.customers;
CREATE TABLE fixture_snapshot.products AS TABLE public.products;
CREATE TABLE fixture_snapshot.orders AS TABLE public.orders;
CREATE TABLE fixture_snapshot.order_items AS TABLE public.order_items;
