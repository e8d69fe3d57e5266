-- Instance-wide settings (sign-up mode, base domain, ...), one row per key.
CREATE TABLE instance_settings (
    key        TEXT PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_.]{0,63}$'),
    value      JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- When this instance's database was first migrated.
INSERT INTO instance_settings (key, value) VALUES ('instance.created_at', to_jsonb(now()));
