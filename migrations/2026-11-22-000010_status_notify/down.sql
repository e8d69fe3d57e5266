DROP TRIGGER instances_status_notify ON instances;
DROP TRIGGER deployments_status_notify ON deployments;
DROP TRIGGER services_status_notify ON services;
DROP FUNCTION railyard_status_notify();
