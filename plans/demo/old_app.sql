-- The old application version: reads and writes users.name and users.email.
-- $1: a random id, $2: a string unique to the run.
INSERT INTO users (name, email) VALUES ('Olga ' || $2, $2 || '@old.example')
UPDATE users SET name = 'Oscar ' || $2, updated_at = now() WHERE id = $1
SELECT id, name, email FROM users WHERE id = $1
UPDATE users SET email = $2 || '@old.example', updated_at = now() WHERE id = $1
DELETE FROM users WHERE id = $1 AND email LIKE '%@old.example'
