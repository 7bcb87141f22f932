-- add_column_insert.sql -- the other pgbench script of bench/add_column.sh:
-- an old-version client inserting a user without created_at (the sync
-- trigger, or after contract the column's default, gives it one).  Ids
-- above the template's, drawn at random; a repeat changes nothing.
\set id random(:rows + 1, :rows * 1000)
INSERT INTO public.users (id, name, email, updated_at)
VALUES (:id, 'Client ' || :id, 'client.' || :id || '@example.org', now())
ON CONFLICT (id) DO NOTHING;
