-- client_update.sql -- the pgbench script of bench/run.sh: an old-version
-- application client that keeps writing while the migration runs.
--
-- One autocommit UPDATE of a random user by primary key, touching columns the
-- migration does not change (the old version never heard of first_name).
-- While zdm's sync trigger is installed, the update of a row not yet
-- backfilled runs the trigger's plpgsql; a row already synced does not (the
-- trigger's WHEN clause).  :rows comes from pgbench -D rows=N.
\set id random(1, :rows)
UPDATE public.users
   SET email = 'user.' || :id || '@example.org', updated_at = now()
 WHERE id = :id;
