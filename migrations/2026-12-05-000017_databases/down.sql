DROP TABLE restores;
DROP TABLE backups;
DROP TABLE backup_schedules;
DROP TABLE app_databases;
DELETE FROM services WHERE source_kind = 'postgres';
ALTER TABLE services DROP CONSTRAINT services_source_kind_check;
ALTER TABLE services ADD CONSTRAINT services_source_kind_check
    CHECK (source_kind IN ('git', 'push', 'upload', 'github'));
ALTER TABLE services DROP CONSTRAINT services_check1;
ALTER TABLE services ADD CONSTRAINT services_check1 CHECK (source_kind = 'upload' OR branch IS NOT NULL);
