DROP TABLE log_offsets;
DROP TABLE service_logs;
