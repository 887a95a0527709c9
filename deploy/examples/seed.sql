-- A legacy users table as many old apps have it, with one user (password "changeme", plaintext
-- on purpose: the gateway upgrades it to argon2id at first sign-in via GATEWAY_USER_REHASH_QUERY).
CREATE TABLE IF NOT EXISTS users (user_id varchar PRIMARY KEY, pass varchar NOT NULL);
INSERT INTO users (user_id, pass) VALUES ('alice', 'changeme') ON CONFLICT DO NOTHING;
