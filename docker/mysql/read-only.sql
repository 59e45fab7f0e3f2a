-- Runs last, on r1 and r2 only: makes the replica super_read_only, so not
-- even an account with SUPER or CONNECTION_ADMIN can write to it (the
-- replication threads still can).
--
-- Not in node.cnf or on the command line: the image entrypoint runs its own
-- setup (root accounts) and the *.sql files before this one on a temporary
-- server started with the same options, and super_read_only would refuse
-- them. read_only=ON is on the command line (root bypasses it). SET PERSIST
-- writes mysqld-auto.cnf in the datadir, so the real server starts with it.
SET PERSIST super_read_only = ON;
