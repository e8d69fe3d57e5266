-- Projects, their environments, and their services (with per-environment settings).
-- Names follow `[a-z0-9][a-z0-9-]{0,38}` and are unique in their parent: they become host
-- names (`<service>-<environment>-<project>.<base domain>`).

CREATE TABLE projects (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,38}$'),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);

CREATE TABLE environments (
    id         UUID PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,38}$'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE services (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,38}$'),
    -- Where the code comes from: a git repository, a `git push` to Railyard, or uploads.
    source_kind TEXT NOT NULL CHECK (source_kind IN ('git', 'push', 'upload')),
    git_url     TEXT,
    branch      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, name),
    CHECK ((source_kind = 'git') = (git_url IS NOT NULL)),
    CHECK (source_kind = 'upload' OR branch IS NOT NULL)
);
