ALTER TABLE projects DROP COLUMN preview_base_environment_id, DROP COLUMN preview_ttl_days,
    DROP COLUMN preview_sealed_variables;
DROP INDEX environments_one_preview_per_pr;
ALTER TABLE environments DROP COLUMN preview_repository, DROP COLUMN preview_pr,
    DROP COLUMN preview_pushed_at;
DROP TABLE github_comments;
DROP TABLE github_deployments;
DELETE FROM deployments WHERE source_kind = 'github';
ALTER TABLE deployments DROP CONSTRAINT deployments_source_kind_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_source_kind_check
    CHECK (source_kind IN ('git', 'push', 'upload', 'rollback', 'variables', 'promotion'));
DROP INDEX services_github_repository;
DELETE FROM services WHERE source_kind = 'github';
ALTER TABLE services DROP COLUMN github_repository;
ALTER TABLE services DROP CONSTRAINT services_source_kind_check;
ALTER TABLE services ADD CONSTRAINT services_source_kind_check CHECK (source_kind IN ('git', 'push', 'upload'));
DROP TABLE github_deliveries;
DROP TABLE github_repositories;
DROP TABLE github_connections;
