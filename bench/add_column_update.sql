-- add_column_update.sql -- one of bench/add_column.sh's two pgbench scripts
-- (an old-version client, which never heard of created_at): one autocommit
-- UPDATE of a random user by primary key.  One statement a transaction, so
-- pgbench's per-transaction latency is the statement's.
\set id random(1, :rows)
UPDATE public.users
   SET email = 'user.' || :id || '@example.org', updated_at = now()
 WHERE id = :id;
