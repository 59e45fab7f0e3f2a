-- Runs on m1 only, and is binlogged on purpose: the database must reach m2,
-- r1 and r2 through replication (which proves replication works).
CREATE DATABASE IF NOT EXISTS splitrail_test;
