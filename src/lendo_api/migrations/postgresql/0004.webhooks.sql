-- Webhooks: where a client wants its events sent, and the secret that signs them. After a
-- rotation the previous secret keeps signing beside the new one until previous_secret_until.
-- Safe to run again (yoyo records a migration after committing it).
-- depends: 0003.events
CREATE TABLE IF NOT EXISTS webhooks (
    id                    text PRIMARY KEY,
    owner                 text NOT NULL,
    url                   text NOT NULL,
    events                text[] NOT NULL,
    secret                text NOT NULL,
    previous_secret       text,
    previous_secret_until timestamptz,
    created_at            timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_by_owner ON webhooks (owner, created_at);
