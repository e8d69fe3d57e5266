ALTER TABLE deployments DROP CONSTRAINT deployments_source_kind_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_source_kind_check
    CHECK (source_kind IN ('git', 'push', 'upload', 'rollback'));
DROP TABLE deployment_variables;
DROP TABLE variables;
DROP SEQUENCE variable_revisions;
