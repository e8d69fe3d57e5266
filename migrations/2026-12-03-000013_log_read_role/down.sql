ALTER TABLE workspaces DROP COLUMN log_read_role;
