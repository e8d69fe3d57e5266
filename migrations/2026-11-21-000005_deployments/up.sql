-- Deployments of a service to an environment, with a state machine:
--   queued → building → deploying → active | failed | cancelled
--   (queued, building and deploying may also end failed or cancelled)
--   active → superseded | rolled_back
-- Every transition is recorded with its time and reason. At most one deployment per service
-- and environment is active, enforced by a unique index, not by hope.
CREATE TABLE deployments (
    id             UUID PRIMARY KEY,
    service_id     UUID NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    environment_id UUID NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    state          TEXT NOT NULL DEFAULT 'queued' CHECK (state IN
                       ('queued', 'building', 'deploying', 'active', 'failed', 'cancelled', 'superseded', 'rolled_back')),
    -- What was asked for and what was built.
    branch         TEXT,
    commit_sha     TEXT CHECK (commit_sha IS NULL OR commit_sha ~ '^[0-9a-f]{7,40}$'),
    -- The build plan, as detected (shown to the user).
    plan           JSONB,
    -- Why it ended failed or cancelled.
    reason         TEXT,
    triggered_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at    TIMESTAMPTZ
);
CREATE INDEX deployments_service ON deployments (service_id, environment_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX deployments_one_active ON deployments (service_id, environment_id) WHERE state = 'active';

CREATE TABLE deployment_events (
    id            BIGSERIAL PRIMARY KEY,
    deployment_id UUID NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    from_state    TEXT,
    to_state      TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX deployment_events_deployment ON deployment_events (deployment_id, id);
