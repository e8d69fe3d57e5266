-- Who in a workspace may read its logs (build and runtime, HTTP and live). Masking hides a
-- sealed value printed as is, not one printed transformed: by default viewers do not read logs.
ALTER TABLE workspaces ADD COLUMN log_read_role TEXT NOT NULL DEFAULT 'member'
    CHECK (log_read_role IN ('viewer', 'member', 'admin', 'owner'));
