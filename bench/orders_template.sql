-- orders_template.sql -- the orders table of bench/constraints.sh, next to
-- users_template.sql's users in the template database.
--
-- Run with psql -v rows=N after users_template.sql (same N): one order per
-- user, user_id a deterministic permutation of the users' ids (7919 is
-- prime, so i * 7919 mod N visits every residue once when N is not a
-- multiple of it), so every order names a user and the foreign key
-- validates.  No index on user_id: the benchmark measures what adding the
-- constraint costs, not a lookup.
\set ON_ERROR_STOP on

CREATE TABLE public.orders (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL,
    amount integer NOT NULL,
    created_at timestamptz
);

INSERT INTO public.orders (id, user_id, amount, created_at)
SELECT i,
       1 + (i * 7919) % :rows,
       (i * 104729) % 100000,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '13 seconds'
  FROM generate_series(1::bigint, :rows) AS i;

VACUUM ANALYZE public.orders;
