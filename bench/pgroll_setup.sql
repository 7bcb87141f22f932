-- pgroll_setup.sql -- what pgroll's start phase leaves on public.users for
-- the split of name, re-enacted (not timed; bench/pgroll_backfill.c then
-- runs the backfill).
--
-- pgroll (xataio/pgroll, pkg/backfill/templates) adds the new columns and a
-- needs-backfill marker (nullable, DEFAULT true: metadata only), and one
-- plpgsql function per new physical column, run by a BEFORE INSERT OR UPDATE
-- trigger with no WHEN clause.  The function binds a variable to every
-- column of the table as it was when the migration started (so the user's
-- "up" expression can name columns bare), reads search_path with a query to
-- tell an old-version write from a new-version one, and for an old-version
-- write (the backfill is one) computes the new column and clears the marker.
--
-- Lenient to pgroll on one point: pgroll has no split, so the faithful
-- equivalent is two operations with a trigger each, every row paying two
-- plpgsql calls.  Here one function computes both columns; the ratio zdm /
-- pgroll is therefore, if anything, flattering to pgroll.
\set ON_ERROR_STOP on

ALTER TABLE public.users
    ADD COLUMN _pgroll_new_first_name text,
    ADD COLUMN _pgroll_new_last_name text,
    ADD COLUMN _pgroll_needs_backfill boolean DEFAULT true;

CREATE FUNCTION public._pgroll_trigger_users_name() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    id public.users.id%TYPE := NEW.id;
    name public.users.name%TYPE := NEW.name;
    email public.users.email%TYPE := NEW.email;
    updated_at public.users.updated_at%TYPE := NEW.updated_at;
    latest_schema text;
    search_path text;
BEGIN
    SELECT current_setting INTO search_path
      FROM current_setting('search_path');
    IF search_path != 'public_split_user_name' THEN
        NEW._pgroll_new_first_name = split_part(name, ' ', 1);
        NEW._pgroll_new_last_name = nullif(substr(name, length(split_part(name, ' ', 1)) + 2), '');
        NEW._pgroll_needs_backfill = false;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER _pgroll_trigger_users_name
    BEFORE UPDATE OR INSERT ON public.users
    FOR EACH ROW EXECUTE FUNCTION public._pgroll_trigger_users_name();
