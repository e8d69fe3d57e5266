-- Environments as a workflow: each has a kind and a place in the project's pipeline
-- (development → staging → production, previews last); a service may track its own
-- branch in each environment; a deployment may be a promotion of another environment's
-- build; the subject and author of each commit built are kept for the matrix and history.
ALTER TABLE environments
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'development'
        CHECK (kind IN ('production', 'staging', 'development', 'preview')),
    ADD COLUMN position INT NOT NULL DEFAULT 0 CHECK (position >= 0),
    ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now();

UPDATE environments SET kind = 'production' WHERE name = 'production';
UPDATE environments SET kind = 'staging' WHERE name = 'staging';
UPDATE environments SET kind = 'development' WHERE name IN ('dev', 'development');

-- Pipeline order from the kinds, oldest first within a kind.
UPDATE environments e SET position = ranked.n
FROM (
    SELECT id, (row_number() OVER (
        PARTITION BY project_id
        ORDER BY CASE kind WHEN 'development' THEN 0 WHEN 'staging' THEN 1
                           WHEN 'production' THEN 2 ELSE 3 END, created_at, id
    ) - 1)::int AS n
    FROM environments
) ranked
WHERE e.id = ranked.id;

-- One production per project: the one that cannot be deleted.
CREATE UNIQUE INDEX environments_one_production ON environments (project_id) WHERE kind = 'production';

ALTER TABLE service_settings ADD COLUMN branch TEXT;

-- A promotion: the deployment (of another environment) whose build it runs.
ALTER TABLE deployments
    ADD COLUMN promoted_from UUID REFERENCES deployments (id) ON DELETE SET NULL;

CREATE TABLE commits (
    service_id UUID NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    sha        TEXT NOT NULL CHECK (sha ~ '^[0-9a-f]{40}$'),
    message    TEXT NOT NULL,
    author     TEXT NOT NULL,
    PRIMARY KEY (service_id, sha)
);

ALTER TABLE deployments DROP CONSTRAINT deployments_source_kind_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_source_kind_check
    CHECK (source_kind IN ('git', 'push', 'upload', 'rollback', 'variables', 'promotion'));
