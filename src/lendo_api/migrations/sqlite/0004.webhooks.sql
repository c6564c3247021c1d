-- Webhooks: where a client wants its events sent, and the secret that signs them. After a
-- rotation the previous secret keeps signing beside the new one until previous_secret_until.
-- depends: 0003.events
CREATE TABLE webhooks (
    id                    TEXT PRIMARY KEY,
    owner                 TEXT NOT NULL,
    url                   TEXT NOT NULL,
    events                TEXT NOT NULL,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until TEXT,
    created_at            TEXT NOT NULL
);
CREATE INDEX webhooks_by_owner ON webhooks (owner, created_at);
