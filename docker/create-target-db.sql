-- The Xiaomi target lives beside the POCO source on the migration's PostgreSQL.
CREATE DATABASE mi_target OWNER poco;
