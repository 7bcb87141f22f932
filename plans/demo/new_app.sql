-- The new application version: first_name, last_name, email_address, through
-- the new version's schema until contract, then the table itself.
INSERT INTO users (first_name, last_name, email_address) VALUES ('Nina', $2, $2 || '@new.example')
UPDATE users SET first_name = 'Noah', last_name = $2, updated_at = now() WHERE id = $1
SELECT id, first_name, last_name, email_address FROM users WHERE id = $1
UPDATE users SET email_address = $2 || '@new.example' WHERE id = $1
DELETE FROM users WHERE id = $1 AND email_address LIKE '%@new.example'
