-- What each service keeps on disk (releases, unpacked uploads, pushed repository, build
-- cache, log files), measured after every build: a workspace's storage is the sum of its
-- services', checked against its quota before an upload, a push or a deployment.
CREATE TABLE service_storage (
    service_id   UUID PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    bytes        BIGINT NOT NULL CHECK (bytes >= 0),
    measured_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
