-- cdc_old_write.sql -- the pgbench script of an old-version client in
-- bench/cdc.sh: one autocommit UPDATE of a random user by primary key.
--
-- It changes name, the column the migration splits, so that every write
-- asks the sync for work (the trigger computes first and last name; zdm
-- sync runs the plan's forward statement); an update of other columns only
-- would ask nothing of either once a row is synced.  Ids start at 2: row 1
-- is bench/cdc.sh's marker and probe row.  :rows comes from pgbench -D.
\set id random(2, :rows)
UPDATE public.users
   SET name = 'Old' || :id || ' Writer' || :client_id, updated_at = now()
 WHERE id = :id;
