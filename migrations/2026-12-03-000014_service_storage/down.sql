DROP TABLE service_storage;
