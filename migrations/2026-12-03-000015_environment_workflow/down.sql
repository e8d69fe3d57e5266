DELETE FROM deployments WHERE source_kind = 'promotion';
ALTER TABLE deployments DROP CONSTRAINT deployments_source_kind_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_source_kind_check
    CHECK (source_kind IN ('git', 'push', 'upload', 'rollback', 'variables'));
DROP TABLE commits;
ALTER TABLE deployments DROP COLUMN promoted_from;
ALTER TABLE service_settings DROP COLUMN branch;
DROP INDEX environments_one_production;
ALTER TABLE environments DROP COLUMN updated_at, DROP COLUMN position, DROP COLUMN kind;
