-- apply_sequence.sh: after plans/sequence/ is applied under its clients
-- (apply_sequence.sql), every query returns 0.

-- check: every user is the snapshot's, transformed (clients change only updated_at)
SELECT count(*)
  FROM fixture_snapshot.users AS s
  JOIN public.users AS u USING (id)
 WHERE u.first_name IS DISTINCT FROM split_part(s.name, ' ', 1)
    OR u.last_name IS DISTINCT FROM nullif(substr(s.name, length(split_part(s.name, ' ', 1)) + 2), '')
    OR u.email_address IS DISTINCT FROM s.email
    OR (id > 2000 AND u.updated_at IS DISTINCT FROM s.updated_at);

-- check: no user appeared, and only the clients' could go
SELECT (SELECT count(*) FROM public.users u
         WHERE NOT EXISTS (SELECT FROM fixture_snapshot.users s WHERE s.id = u.id))
     + (SELECT count(*) FROM fixture_snapshot.users s
         WHERE (s.id > 2000 OR s.id % 10 <> 0)
           AND NOT EXISTS (SELECT FROM public.users u WHERE u.id = s.id));

-- check: every order of the snapshot that is left is in units, its note the snapshot's or a client's
SELECT count(*)
  FROM fixture_snapshot.orders AS s
  JOIN public.orders AS o USING (id)
 WHERE o.amount IS DISTINCT FROM s.amount / 100.0
    OR o.user_id IS DISTINCT FROM s.user_id
    OR o.created_at IS DISTINCT FROM s.created_at
    OR (o.note IS DISTINCT FROM s.note
        AND (id > 2000 OR o.note !~ '^old-[0-9]+-[0-9]+$'));

-- check: orders above 2000 are all there
SELECT count(*)
  FROM fixture_snapshot.orders AS s
 WHERE s.id > 2000
   AND NOT EXISTS (SELECT FROM public.orders o WHERE o.id = s.id);

-- check: every inserted order has amount 0 and a client's note
SELECT count(*)
  FROM public.orders
 WHERE id > 20000 AND NOT (amount = 0 AND note ~ '^old-[0-9]+-[0-9]+$');

-- check: the clients wrote while the sequence ran (inserted orders, updated users)
SELECT (NOT EXISTS (SELECT FROM public.orders WHERE id > 20000))::int
     + (NOT EXISTS (SELECT FROM fixture_snapshot.users s JOIN public.users u USING (id)
                     WHERE u.updated_at <> s.updated_at))::int;
