-- App output, line by line, as the log shipper reads it from the monitors' files: `id` is
-- the cursor (one shipper per host inserts in order). Kept for RAILYARD_LOG_RETENTION_DAYS.
CREATE TABLE service_logs (
    id             BIGSERIAL PRIMARY KEY,
    service_id     UUID NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    environment_id UUID NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    deployment_id  UUID REFERENCES deployments (id) ON DELETE SET NULL,
    ts             TIMESTAMPTZ NOT NULL,
    stream         TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr', 'event')),
    text           TEXT NOT NULL
);
CREATE INDEX service_logs_service ON service_logs (service_id, environment_id, id);
CREATE INDEX service_logs_ts ON service_logs (ts);

-- How far the shipper has read each log file (updated with the lines it stored).
CREATE TABLE log_offsets (
    path   TEXT PRIMARY KEY,
    "offset" BIGINT NOT NULL
);
