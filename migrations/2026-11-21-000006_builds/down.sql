DROP TABLE deployment_logs;
DROP TABLE releases;
ALTER TABLE deployments DROP COLUMN release_of, DROP COLUMN upload_id, DROP COLUMN source_kind;
DROP TABLE service_settings;
