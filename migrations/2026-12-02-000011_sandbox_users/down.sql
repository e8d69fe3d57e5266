DROP TABLE sandbox_users;
DROP SEQUENCE sandbox_user_numbers;
