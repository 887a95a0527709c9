-- A legacy users table as many old apps have it, with one user: alice, password "changeme",
-- stored in plaintext on purpose. The gateway accepts it (GATEWAY_ALLOW_PLAINTEXT_PASSWORDS=true)
-- and replaces it with an argon2id hash at her first sign-in (GATEWAY_USER_REHASH_QUERY).
CREATE TABLE IF NOT EXISTS users (user_id varchar PRIMARY KEY, pass varchar NOT NULL);
INSERT INTO users (user_id, pass) VALUES ('alice', 'changeme') ON CONFLICT DO NOTHING;

-- The gateway's own login role, with no more than it needs: read user_id and pass, and replace
-- pass when it upgrades a hash. It cannot read or change anything else of the app's data.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'session_gateway') THEN
    CREATE ROLE session_gateway LOGIN PASSWORD 'gateway-demo-password';
  END IF;
END
$$;
GRANT SELECT (user_id, pass), UPDATE (pass) ON users TO session_gateway;
