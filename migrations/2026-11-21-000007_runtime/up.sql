-- Running releases: one row per process the runtime started (or, for a static site, the
-- directory the router serves). A control plane that restarts finds its processes here:
-- `pid` with `start_ticks` (the process's start time in clock ticks since boot, from
-- /proc/<pid>/stat) tells a live process from a reused pid.
CREATE TABLE instances (
    id             UUID PRIMARY KEY,
    deployment_id  UUID NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    service_id     UUID NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    environment_id UUID NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    state          TEXT NOT NULL CHECK (state IN ('starting', 'running', 'stopping', 'stopped', 'crashed')),
    pid            INT,
    start_ticks    BIGINT,
    port           INT CHECK (port BETWEEN 1 AND 65535),
    -- A static site: the directory the router serves (relative to the data directory).
    static_root    TEXT,
    restarts       INT NOT NULL DEFAULT 0,
    last_exit_code INT,
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX instances_service ON instances (service_id, environment_id, started_at DESC);
-- A port serves one live instance at a time.
CREATE UNIQUE INDEX instances_port ON instances (port) WHERE state IN ('starting', 'running', 'stopping');
