-- Every service runs (and builds) in each environment as an unprivileged user of its own:
-- uid = RAILYARD_SANDBOX_UID_BASE + number. Numbers come from a sequence and are never
-- reused, so files a deleted service left can never belong to a new one.
CREATE SEQUENCE sandbox_user_numbers AS integer MINVALUE 1;

CREATE TABLE sandbox_users (
    service_id uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    number integer NOT NULL UNIQUE DEFAULT nextval('sandbox_user_numbers'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_id, environment_id)
);
