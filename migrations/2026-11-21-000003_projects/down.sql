DROP TABLE services;
DROP TABLE environments;
DROP TABLE projects;
