-- Per-environment settings of a service. NULL means "detect" (or the default): explicit
-- settings override what build detection finds.
CREATE TABLE service_settings (
    service_id        UUID NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    environment_id    UUID NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    root_dir          TEXT CHECK (length(root_dir) <= 512),
    build_command     TEXT CHECK (length(build_command) <= 4096),
    start_command     TEXT CHECK (length(start_command) <= 4096),
    health_check_path TEXT CHECK (health_check_path ~ '^/[!-~]*$' AND length(health_check_path) <= 512),
    restart_policy    TEXT NOT NULL DEFAULT 'on_failure' CHECK (restart_policy IN ('on_failure', 'always', 'never')),
    port              INT CHECK (port BETWEEN 1 AND 65535),
    memory_limit_mb   INT CHECK (memory_limit_mb BETWEEN 16 AND 1048576),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (service_id, environment_id)
);

-- Where a deployment's code came from, and for a rollback, whose release it reuses.
ALTER TABLE deployments
    ADD COLUMN source_kind TEXT NOT NULL DEFAULT 'git' CHECK (source_kind IN ('git', 'push', 'upload', 'rollback')),
    ADD COLUMN upload_id   UUID,
    ADD COLUMN release_of  UUID REFERENCES deployments (id) ON DELETE SET NULL,
    ADD CHECK ((source_kind = 'upload') = (upload_id IS NOT NULL));

-- The built artifact of a deployment, kept for rollbacks: the last N per service and
-- environment (older ones are pruned: directory removed, row marked).
CREATE TABLE releases (
    deployment_id  UUID PRIMARY KEY REFERENCES deployments (id) ON DELETE CASCADE,
    service_id     UUID NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    environment_id UUID NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    -- Relative to the data directory.
    path           TEXT NOT NULL,
    plan           JSONB NOT NULL,
    commit_sha     TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    pruned_at      TIMESTAMPTZ
);
CREATE INDEX releases_service ON releases (service_id, environment_id, created_at DESC);

-- Build output, line by line, in order: `seq` is the cursor within a deployment.
CREATE TABLE deployment_logs (
    deployment_id UUID NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    stream        TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr', 'event')),
    text          TEXT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);
