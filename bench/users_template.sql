-- users_template.sql -- the table every method of bench/run.sh starts from.
--
-- Run once per benchmark, with psql -v rows=N, in the database that serves as
-- the template of every run's database (CREATE DATABASE ... TEMPLATE), so
-- each method gets a byte-identical copy of the same heap and index.
--
-- Names are made from the row number, not random(), so that two runs of the
-- benchmark build the same table: 85% "First Last", 10% "First Middle Last"
-- (last_name gets two words), 5% a single word (last_name is NULL).  About
-- 95 MB of heap for 1M rows, like the table of the measured baselines in
-- ENVIRONMENT.md.
\set ON_ERROR_STOP on

CREATE EXTENSION IF NOT EXISTS pg_prewarm;

CREATE TABLE public.users (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    email text,
    updated_at timestamptz
);

INSERT INTO public.users (id, name, email, updated_at)
SELECT i,
       CASE WHEN i % 20 = 0 THEN f
            WHEN i % 10 = 1 THEN f || ' ' || m || ' ' || l
            ELSE f || ' ' || l END,
       lower(f) || '.' || replace(lower(l), ' ', '') || '.' || i || '@example.com',
       timestamptz '2024-01-01 00:00:00+00' + i * interval '17 seconds'
  FROM generate_series(1::bigint, :rows) AS i,
       LATERAL (SELECT (ARRAY['Ada', 'Alan', 'Barbara', 'Claude', 'Donald',
                              'Edsger', 'Frances', 'Grace', 'Hedy', 'Ivan',
                              'John', 'Katherine', 'Leslie', 'Margaret',
                              'Niklaus', 'Ole', 'Radia', 'Sophie', 'Tim',
                              'Whitfield'])[1 + (i * 7919) % 20] AS f,
                       (ARRAY['Lovelace', 'Turing', 'Liskov', 'Shannon',
                              'Knuth', 'Dijkstra', 'Allen', 'Hopper',
                              'Lamarr', 'Sutherland', 'Backus', 'Johnson',
                              'Lamport', 'Hamilton', 'Wirth', 'Dahl',
                              'Perlman', 'Wilson', 'Berners-Lee',
                              'Diffie', 'van Rossum'])[1 + (i * 104729) % 21] AS l,
                       (ARRAY['Maria', 'Lee', 'Ann', 'Jo'])[1 + i % 4] AS m) AS names;

VACUUM ANALYZE public.users;
