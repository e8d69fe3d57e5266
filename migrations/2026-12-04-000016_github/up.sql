-- GitHub as a source: a user's connection for repositories (its token sealed), the
-- repositories Railyard has a webhook on (its secret sealed), every webhook delivery,
-- pull-request preview environments, and the GitHub Deployment each deployment reports to.
CREATE TABLE github_connections (
    user_id       UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    github_id     BIGINT NOT NULL,
    login         TEXT NOT NULL,
    token         BYTEA NOT NULL,
    broken_reason TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per repository (lower-cased `owner/name`), whoever's projects use it.
CREATE TABLE github_repositories (
    full_name    TEXT PRIMARY KEY CHECK (full_name = lower(full_name)),
    connected_by UUID REFERENCES users (id) ON DELETE SET NULL,
    hook_id      BIGINT,
    hook_secret  BYTEA,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE github_deliveries (
    id             UUID PRIMARY KEY,
    delivery_id    TEXT NOT NULL,
    event          TEXT NOT NULL,
    action         TEXT,
    repository     TEXT,
    outcome        TEXT NOT NULL CHECK (outcome IN ('processed', 'skipped', 'ignored', 'refused',
                                                    'awaiting_approval', 'approved', 'failed')),
    detail         TEXT NOT NULL DEFAULT '',
    project_ids    UUID[] NOT NULL DEFAULT '{}',
    deployment_ids UUID[] NOT NULL DEFAULT '{}',
    payload        BYTEA NOT NULL,
    redelivery_of  UUID REFERENCES github_deliveries (id) ON DELETE SET NULL,
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A delivery GitHub sends again is processed once; a redelivery asked for in the dashboard
-- is a new row that names the one it repeats.
CREATE UNIQUE INDEX github_deliveries_once ON github_deliveries (delivery_id) WHERE redelivery_of IS NULL;
CREATE INDEX github_deliveries_projects ON github_deliveries USING gin (project_ids);
CREATE INDEX github_deliveries_received ON github_deliveries (received_at DESC, id DESC);

ALTER TABLE services DROP CONSTRAINT services_source_kind_check;
ALTER TABLE services ADD CONSTRAINT services_source_kind_check
    CHECK (source_kind IN ('git', 'push', 'upload', 'github'));
ALTER TABLE services ADD COLUMN github_repository TEXT;
CREATE INDEX services_github_repository ON services (lower(github_repository)) WHERE github_repository IS NOT NULL;

ALTER TABLE deployments DROP CONSTRAINT deployments_source_kind_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_source_kind_check
    CHECK (source_kind IN ('git', 'push', 'upload', 'rollback', 'variables', 'promotion', 'github'));
-- The GitHub Deployment a deployment of a GitHub commit reports to, and the last state
-- reported (statuses are posted once per state).
CREATE TABLE github_deployments (
    deployment_id  UUID PRIMARY KEY REFERENCES deployments (id) ON DELETE CASCADE,
    repository     TEXT NOT NULL,
    github_id      BIGINT,
    reported_state TEXT
);

-- A preview environment belongs to one pull request; its TTL counts from the last push.
ALTER TABLE environments
    ADD COLUMN preview_repository TEXT,
    ADD COLUMN preview_pr INT,
    ADD COLUMN preview_pushed_at TIMESTAMPTZ;

-- The one comment per project and pull request that carries its preview URLs (edited in place).
CREATE TABLE github_comments (
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    repository TEXT NOT NULL,
    pr         INT NOT NULL,
    comment_id BIGINT NOT NULL,
    PRIMARY KEY (project_id, repository, pr)
);
CREATE UNIQUE INDEX environments_one_preview_per_pr ON environments (project_id, preview_repository, preview_pr)
    WHERE preview_pr IS NOT NULL;

ALTER TABLE projects
    ADD COLUMN preview_base_environment_id UUID REFERENCES environments (id) ON DELETE SET NULL,
    ADD COLUMN preview_ttl_days INT NOT NULL DEFAULT 7 CHECK (preview_ttl_days BETWEEN 1 AND 90),
    ADD COLUMN preview_sealed_variables BOOLEAN NOT NULL DEFAULT false;
