-- cdc_new_write.sql -- the pgbench script of a new-version client in
-- bench/cdc.sh: one autocommit UPDATE of a random user's last_name through
-- the new version's view (:vschema, the plan's new_version.schema, from
-- pgbench -D; pgbench's default simple query mode puts it in the text).
-- zdm sync carries it back to name with the plan's reverse statement.
-- Ids start at 2: row 1 is bench/cdc.sh's marker and probe row.
\set id random(2, :rows)
UPDATE :vschema.users
   SET last_name = 'Writer' || :client_id, updated_at = now()
 WHERE id = :id;
