-- apply_app.sh: once plans/app/ is applied under the application's
-- versions (apply_app.sql), every query returns 0.  fixture_snapshot holds
-- the rows as apply_app.data.sql loaded them; ids 1..2000 (products
-- 1..200) are the clients', ids above 100000 the rows they inserted.

-- check: every customer nobody touched is the snapshot's, through every migration
SELECT count(*)
  FROM fixture_snapshot.customers AS s
  LEFT JOIN public.customers AS c USING (id)
 WHERE s.id > 2000
   AND (c.id IS NULL
        OR c.first_name IS DISTINCT FROM split_part(s.name, ' ', 1)
        OR c.last_name IS DISTINCT FROM nullif(substr(s.name, length(split_part(s.name, ' ', 1)) + 2), '')
        OR c.email_address IS DISTINCT FROM s.email
        OR c.phone IS NOT NULL
        OR c.created_at IS DISTINCT FROM s.created_at);

-- check: the clients' customers are all there, each column the snapshot's or a client's
SELECT count(*)
  FROM fixture_snapshot.customers AS s
  LEFT JOIN public.customers AS c USING (id)
 WHERE s.id <= 2000
   AND (c.id IS NULL
        OR NOT (c.first_name = split_part(s.name, ' ', 1) OR c.first_name = 'Ann')
        OR NOT (c.last_name IS NOT DISTINCT FROM nullif(substr(s.name, length(split_part(s.name, ' ', 1)) + 2), '')
                OR c.last_name ~ '^v[0-9]{2}-[0-9]+-[0-9]+$')
        OR NOT (c.email_address IS NOT DISTINCT FROM s.email
                OR c.email_address ~ '^v[0-9]{2}-[0-9]+-[0-9]+@example\.org$')
        OR NOT (c.phone IS NULL OR c.phone = '+1 555 ' || c.id));

-- check: every other customer is one a client inserted, named after its email
SELECT count(*)
  FROM public.customers AS c
 WHERE NOT EXISTS (SELECT FROM fixture_snapshot.customers s WHERE s.id = c.id)
   AND NOT (c.id > 100000
            AND c.email_address ~ '^v[0-9]{2}-[0-9]+-[0-9]+@shop\.example$'
            AND c.first_name = split_part(c.email_address, '@', 1)
            AND c.last_name = 'Client'
            AND (c.phone IS NULL OR c.phone = '+1 555 0199'));

-- check: every version of the application, 0 to 15, inserted customers
SELECT count(*)
  FROM pg_catalog.generate_series(0, 15) AS v
 WHERE NOT EXISTS (SELECT FROM public.customers
                    WHERE email_address LIKE 'v' || lpad(v::text, 2, '0') || '-%@shop.example');

-- check: products nobody touched are in units, the clients' never cheaper;
-- a title is the snapshot's, or NULL where version 15 made a draft
SELECT count(*)
  FROM fixture_snapshot.products AS s
  LEFT JOIN public.products AS p USING (id)
 WHERE p.id IS NULL
    OR p.sku IS DISTINCT FROM s.sku
    OR (s.id > 200 AND p.title IS DISTINCT FROM s.title)
    OR (s.id <= 200 AND p.title IS NOT NULL AND p.title <> s.title)
    OR (s.id > 200 AND p.price IS DISTINCT FROM s.price / 100.0)
    OR (s.id <= 200 AND NOT p.price >= s.price / 100.0)
    OR (SELECT count(*) FROM public.products) <> 500;

-- check: every order nobody touched has its status filled and its address merged
SELECT count(*)
  FROM fixture_snapshot.orders AS s
  LEFT JOIN public.orders AS o USING (id)
 WHERE s.id > 2000
   AND (o.id IS NULL
        OR o.customer_id IS DISTINCT FROM s.customer_id
        OR o.status IS DISTINCT FROM coalesce(s.status, 'new')
        OR o.ship_address IS DISTINCT FROM nullif(concat_ws(', ', s.ship_street, s.ship_city), '')
        OR o.note IS DISTINCT FROM s.note
        OR o.created_at IS DISTINCT FROM s.created_at);

-- check: the clients' orders are all there, each column the snapshot's or a client's
SELECT count(*)
  FROM fixture_snapshot.orders AS s
  LEFT JOIN public.orders AS o USING (id)
 WHERE s.id <= 2000
   AND (o.id IS NULL
        OR o.customer_id IS DISTINCT FROM s.customer_id
        OR NOT (o.status = coalesce(s.status, 'new') OR o.status = 'shipped')
        OR NOT (o.ship_address IS NOT DISTINCT FROM nullif(concat_ws(', ', s.ship_street, s.ship_city), '')
                OR o.ship_address ~ '^v[0-9]{2}-[0-9]+-[0-9]+ Road, Shelbyville$'));

-- check: every other order is one a client inserted, with one line
SELECT count(*)
  FROM public.orders AS o
 WHERE NOT EXISTS (SELECT FROM fixture_snapshot.orders s WHERE s.id = o.id)
   AND NOT (o.id > 100000
            AND o.customer_id BETWEEN 1 AND 2000
            AND o.status IN ('new', 'paid', 'shipped')
            AND o.ship_address ~ '^v[0-9]{2}-[0-9]+-[0-9]+ (Street, Springfield|Road, Shelbyville)$'
            AND (SELECT count(*) FROM public.order_lines l WHERE l.order_id = o.id) = 1);

-- check: every order got updated_at (014) from the backfill, the sync or a
-- client, at some time after the rows were loaded
SELECT count(*)
  FROM public.orders AS o
 WHERE NOT (o.updated_at >= (SELECT at FROM fixture_snapshot.loaded)
            AND o.updated_at <= now());

-- check: version 15 saved drafts (products without a title)
SELECT (NOT EXISTS (SELECT FROM public.products WHERE title IS NULL))::int;

-- check: the clients inserted orders while the migrations ran
SELECT (NOT EXISTS (SELECT FROM public.orders WHERE id > 100000))::int;

-- check: the order lines of the snapshot are there, unchanged where nobody touched them
SELECT count(*)
  FROM fixture_snapshot.order_items AS s
  LEFT JOIN public.order_lines AS l USING (order_id, product_id)
 WHERE l.order_id IS NULL
    OR l.price IS DISTINCT FROM s.price
    OR (s.order_id > 2000 AND l.quantity IS DISTINCT FROM s.quantity)
    OR (s.order_id <= 2000 AND NOT l.quantity >= s.quantity);

-- check: no order line without its order
SELECT count(*)
  FROM public.order_lines AS l
 WHERE NOT EXISTS (SELECT FROM public.orders o WHERE o.id = l.order_id);
