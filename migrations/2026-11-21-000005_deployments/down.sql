DROP TABLE deployment_events;
DROP TABLE deployments;
