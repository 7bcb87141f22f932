-- apply_sequence.sh's clients: an application that only touches what all
-- three migrations of plans/sequence/ leave as it is (users.updated_at,
-- orders.note, whole rows inserted with amount 0, which is 0 in cents and
-- in units, and deleted), so the same statements run before, during and
-- after every one of them.  Each write still fires the migrations' sync
-- triggers and races their backfills.
UPDATE users SET updated_at = now() WHERE id = $1
SELECT id, updated_at FROM users WHERE id = $1
INSERT INTO orders (user_id, amount, note) VALUES ($1, 0, $2)
UPDATE orders SET note = $2 WHERE id = $1
SELECT id, note, created_at FROM orders WHERE id = $1
SELECT count(*) FROM orders WHERE user_id = $1
-- the next user, wrapping at the clients' last id (2000): the users above
-- it are nobody's, and the data check holds them to the snapshot
UPDATE users SET updated_at = now() WHERE id = $1 % 2000 + 1
DELETE FROM orders WHERE id = $1
DELETE FROM users WHERE id = $1 AND id % 10 = 0
