-- Variables: a service's own per environment (service_id set), or an environment's shared
-- ones (service_id NULL). The value is only ever stored encrypted (AES-256-GCM under the
-- key ring; the AAD binds it to workspace, environment, service and name). `revision`
-- grows on every change of the value, so "changes not deployed" compares revisions, never
-- values.
CREATE SEQUENCE variable_revisions;

CREATE TABLE variables (
    id             UUID PRIMARY KEY,
    workspace_id   UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    environment_id UUID NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    service_id     UUID REFERENCES services (id) ON DELETE CASCADE,
    name           TEXT NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]*$' AND length(name) <= 256),
    ciphertext     BYTEA NOT NULL,
    sealed         BOOLEAN NOT NULL DEFAULT false,
    revision       BIGINT NOT NULL DEFAULT nextval('variable_revisions'),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by     UUID REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX variables_service_name ON variables (environment_id, service_id, name)
    WHERE service_id IS NOT NULL;
CREATE UNIQUE INDEX variables_shared_name ON variables (environment_id, name)
    WHERE service_id IS NULL;

-- What a deployment runs with: its resolved variables, encrypted (AAD: the deployment id),
-- and the revisions they came from (for the diff against the current variables).
CREATE TABLE deployment_variables (
    deployment_id UUID PRIMARY KEY REFERENCES deployments (id) ON DELETE CASCADE,
    ciphertext    BYTEA NOT NULL,
    revisions     JSONB NOT NULL DEFAULT '{}'::jsonb
);

-- "Deploy changes": the active release again, with the current variables.
ALTER TABLE deployments DROP CONSTRAINT deployments_source_kind_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_source_kind_check
    CHECK (source_kind IN ('git', 'push', 'upload', 'rollback', 'variables'));
