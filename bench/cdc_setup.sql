-- cdc_setup.sql -- bench/cdc.sh's helpers, loaded once into the template
-- database after users_template.sql, so that every copy has them.
--
-- They live in schema bench, away from public.users: the migration's
-- publication covers that table alone, so nothing here is ever decoded
-- except the writes to users the helpers make on purpose.  Row 1 of users
-- is reserved for them (the pgbench scripts start at id 2).  They mention
-- the columns expand adds (zdm_new_first_name, zdm_new_last_name) and the
-- journal (zdm.cdc); PL/pgSQL resolves names when a statement first runs,
-- so they can be created before those exist and are called only after
-- expand.  The split they look for is bench/cdc_split_name.zdm's.
\set ON_ERROR_STOP on

CREATE SCHEMA bench;

-- The backlog: N old-version single-row UPDATEs of name, each its own
-- transaction (COMMIT in the loop), as N clients' autocommit writes would
-- be, but without a round trip each, so that 300,000 take seconds.  The
-- caller sets synchronous_commit = off for the session: the backlog is not
-- what is timed, and one synchronous commit after it flushes it all.  Ids
-- 2..NROWS in a fixed scattered order (a multiplicative step modulo
-- NROWS - 1), so every run writes the same rows in the same order and,
-- while N < NROWS, no row twice.
CREATE PROCEDURE bench.backlog(n integer, nrows bigint)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        UPDATE public.users
           SET name = 'Backlog' || i || ' Writer', updated_at = pg_catalog.now()
         WHERE id = 2 + (i::bigint * 1000003) % (nrows - 1);
        COMMIT;
    END LOOP;
END
$$;

-- How many distinct rows bench.backlog(n, nrows) writes.
CREATE FUNCTION bench.backlog_rows(n integer, nrows bigint) RETURNS bigint
LANGUAGE sql AS $$
    SELECT count(DISTINCT 2 + (i::bigint * 1000003) % (nrows - 1))
      FROM pg_catalog.generate_series(1, n) AS i
$$;

-- bench.wait_mark(TAG, SECONDS): the time (epoch seconds, by the server's
-- clock) at which row 1's new columns say the sync has applied the marker
-- write "UPDATE users SET name = 'zdmbenchmark TAG' WHERE id = 1", or NULL
-- after SECONDS without it.  Changes are applied in commit order, so once
-- the marker (written last) is there, everything before it is too.  A
-- server-side loop, polled every 5 ms from one session, rather than psql
-- started over and over on a machine with two cores to share.  Each
-- statement of a volatile function takes a new snapshot.
CREATE FUNCTION bench.wait_mark(tag text, seconds double precision)
RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    give_up timestamptz := pg_catalog.clock_timestamp() + seconds * interval '1 second';
BEGIN
    LOOP
        IF EXISTS (SELECT FROM public.users
                    WHERE id = 1 AND zdm_new_first_name = 'zdmbenchmark'
                      AND zdm_new_last_name = tag) THEN
            RETURN extract(epoch FROM pg_catalog.clock_timestamp());
        END IF;
        IF pg_catalog.clock_timestamp() > give_up THEN
            RETURN NULL;
        END IF;
        PERFORM pg_catalog.pg_sleep(0.005);
    END LOOP;
END
$$;

-- What bench.lag_probe measured (unlogged: no WAL, nothing decoded).
CREATE UNLOGGED TABLE bench.probes (
    ms      double precision NOT NULL, -- commit of the probe write -> seen applied
    applied boolean NOT NULL           -- false: still not applied when the window closed
);
CREATE UNLOGGED TABLE bench.zdm_lag (
    seconds double precision           -- zdm.cdc.lag_seconds as sampled
);

-- bench.lag_probe(SECONDS, MIGRATION): for SECONDS, under whatever load
-- runs beside it,
--  - every 200 ms at most, one probe: an old-version write to row 1
--    (name = 'zdmbenchprobe K'), committed (synchronously: decodable from
--    then on), then polled every 2 ms until the new columns show K; the
--    time from its COMMIT returning to then goes to bench.probes.  One
--    probe at a time: a probe slower than 200 ms delays the next.  That is
--    the lag a reader of the new columns sees, end to end;
--  - every 200 ms, zdm.cdc.lag_seconds: the lag zdm sync reports, which
--    zdm apply's catch-up steps compare with max_lag.
-- The figures are kept in arrays and written once at the end, so the loop
-- holds no transaction id open between probes.
CREATE PROCEDURE bench.lag_probe(seconds double precision, migration text)
LANGUAGE plpgsql AS $$
DECLARE
    t_end timestamptz := pg_catalog.clock_timestamp() + seconds * interval '1 second';
    next_probe timestamptz := pg_catalog.clock_timestamp();
    next_sample timestamptz := pg_catalog.clock_timestamp();
    k integer := 0;
    waiting boolean := false;
    committed timestamptz;
    probe_ms double precision[] := '{}';
    probe_ok boolean[] := '{}';
    lags double precision[] := '{}';
BEGIN
    LOOP
        IF NOT waiting AND pg_catalog.clock_timestamp() >= next_probe THEN
            k := k + 1;
            next_probe := pg_catalog.clock_timestamp() + interval '200 ms';
            UPDATE public.users SET name = 'zdmbenchprobe ' || k WHERE id = 1;
            COMMIT;
            committed := pg_catalog.clock_timestamp();
            waiting := true;
        END IF;
        IF waiting AND EXISTS (SELECT FROM public.users
                                WHERE id = 1 AND zdm_new_first_name = 'zdmbenchprobe'
                                  AND zdm_new_last_name = k::text) THEN
            probe_ms := probe_ms || 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - committed)::double precision;
            probe_ok := probe_ok || true;
            waiting := false;
        END IF;
        IF pg_catalog.clock_timestamp() >= next_sample THEN
            lags := lags || (SELECT c.lag_seconds FROM zdm.cdc AS c
                              WHERE c.migration = lag_probe.migration);
            next_sample := next_sample + interval '200 ms';
        END IF;
        EXIT WHEN pg_catalog.clock_timestamp() >= t_end;
        PERFORM pg_catalog.pg_sleep(0.002);
    END LOOP;
    IF waiting THEN
        -- a lower bound: it had not arrived when the window closed
        probe_ms := probe_ms || 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - committed)::double precision;
        probe_ok := probe_ok || false;
    END IF;
    INSERT INTO bench.probes (ms, applied) SELECT * FROM unnest(probe_ms, probe_ok);
    INSERT INTO bench.zdm_lag (seconds) SELECT unnest(lags);
    COMMIT;
END
$$;
