-- Accounts of every MariaDB lab node: the script lab (proto-tests/lab up)
-- and the compose lab (docker-compose.mariadb.yml) both run this file, once
-- per node. docker/validate checks that the grants below are exactly what
-- the nodes of the script lab end up with.
--
-- Not binlogged (sql_log_bin=0): every node gets its own copy and nothing
-- about accounts travels through replication.
SET sql_log_bin=0;

-- The application account (the [[users]] entry of splitrail): ordinary application
-- privileges, deliberately no SUPER / READ_ONLY ADMIN, so a write misrouted
-- to r1/r2 fails with error 1290 (read-only) instead of succeeding there.
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER,
      CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW,
      SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER,
      REFERENCES, PROCESS
    ON *.* TO 'app'@'%';

-- For health and lag checks (SHOW SLAVE STATUS needs SLAVE MONITOR).
CREATE USER IF NOT EXISTS 'monitor'@'%' IDENTIFIED BY 'monitor';
-- READ_ONLY ADMIN: splitrail fences (SET GLOBAL read_only) with this login
-- (failover.fence). REPLICATION SLAVE ADMIN: failover.repoint_replicas
-- re-points replicas (CHANGE MASTER) with it.
GRANT REPLICATION CLIENT, SLAVE MONITOR, PROCESS, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN ON *.* TO 'monitor'@'%';
-- monitor.heartbeat: the writer's monitor stamps splitrail.heartbeat.
GRANT CREATE, INSERT, UPDATE, SELECT ON splitrail.* TO 'monitor'@'%';
-- accounts.from_backend: splitrail reads the accounts (users, hosts,
-- password hashes) with this login.
GRANT SELECT ON mysql.global_priv TO 'monitor'@'%';

-- What replicas (and the other master) log in as.
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
