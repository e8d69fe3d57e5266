-- Live status: every change to a service, a deployment or an instance notifies
-- `railyard_status` with `<project id>:<environment id>` (`*` for a service, which spans
-- environments). Servers LISTEN and tell the dashboards watching that project; notifying
-- from the database catches every writer (API, deploy worker, supervisor) and is delivered
-- only when the change commits.
CREATE FUNCTION railyard_status_notify() RETURNS trigger AS $$
DECLARE
    row_data record;
    project uuid;
    environment text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_data := OLD;
    ELSE
        row_data := NEW;
    END IF;
    IF TG_TABLE_NAME = 'services' THEN
        project := row_data.project_id;
        environment := '*';
    ELSE
        SELECT s.project_id INTO project FROM services s WHERE s.id = row_data.service_id;
        environment := row_data.environment_id::text;
    END IF;
    IF project IS NOT NULL THEN
        PERFORM pg_notify('railyard_status', project::text || ':' || environment);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER services_status_notify
    AFTER INSERT OR UPDATE OR DELETE ON services
    FOR EACH ROW EXECUTE FUNCTION railyard_status_notify();

CREATE TRIGGER deployments_status_notify
    AFTER INSERT OR UPDATE OF state, commit_sha ON deployments
    FOR EACH ROW EXECUTE FUNCTION railyard_status_notify();

CREATE TRIGGER instances_status_notify
    AFTER INSERT OR UPDATE OF state, restarts, port, pid ON instances
    FOR EACH ROW EXECUTE FUNCTION railyard_status_notify();
