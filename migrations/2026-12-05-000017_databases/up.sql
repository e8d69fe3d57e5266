-- Databases for apps: a `postgres` service has one database (and role) per environment.
ALTER TABLE services DROP CONSTRAINT services_source_kind_check;
ALTER TABLE services ADD CONSTRAINT services_source_kind_check
    CHECK (source_kind IN ('git', 'push', 'upload', 'github', 'postgres'));
ALTER TABLE services DROP CONSTRAINT services_check1;
ALTER TABLE services ADD CONSTRAINT services_check1
    CHECK (source_kind IN ('upload', 'postgres') OR branch IS NOT NULL);

CREATE TABLE app_databases (
    id UUID PRIMARY KEY,
    service_id UUID NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    environment_id UUID NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    driver TEXT NOT NULL CHECK (driver IN ('local', 'neon')),
    name TEXT NOT NULL,
    role_name TEXT NOT NULL,
    -- The role's password, AES-256-GCM bound to this row.
    password_sealed BYTEA NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    -- Neon: the branch's id.
    external_id TEXT,
    state TEXT NOT NULL DEFAULT 'provisioning' CHECK (state IN ('provisioning', 'ready', 'failed')),
    reason TEXT,
    branched_from UUID REFERENCES environments(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (service_id, environment_id)
);
CREATE INDEX app_databases_environment ON app_databases (environment_id);

-- When a database is backed up and what is kept (a row per database; absent = defaults).
CREATE TABLE backup_schedules (
    database_id UUID PRIMARY KEY REFERENCES app_databases(id) ON DELETE CASCADE,
    schedule TEXT NOT NULL DEFAULT '0 3 * * *',
    keep_daily INTEGER NOT NULL DEFAULT 7 CHECK (keep_daily > 0),
    keep_weekly INTEGER NOT NULL DEFAULT 4 CHECK (keep_weekly > 0),
    -- The last scheduled backup's slot, so a schedule fires once per slot.
    scheduled_at TIMESTAMPTZ
);

CREATE TABLE backups (
    id UUID PRIMARY KEY,
    database_id UUID NOT NULL REFERENCES app_databases(id) ON DELETE CASCADE,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'verified', 'failed')),
    trigger TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule')),
    store TEXT NOT NULL,
    object_key TEXT NOT NULL,
    size_bytes BIGINT,
    reason TEXT,
    -- Table by table: name, rows, checksum (what verification compared).
    tables JSONB NOT NULL DEFAULT '[]',
    requested_by UUID REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    verified_at TIMESTAMPTZ,
    -- Set when retention removed its object.
    pruned_at TIMESTAMPTZ
);
CREATE INDEX backups_database ON backups (database_id, created_at DESC);

CREATE TABLE restores (
    id UUID PRIMARY KEY,
    backup_id UUID NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
    target TEXT NOT NULL CHECK (target IN ('new', 'in_place')),
    -- The database restored into.
    database_name TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    reason TEXT,
    tables JSONB NOT NULL DEFAULT '[]',
    requested_by UUID REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);
