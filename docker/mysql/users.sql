-- Accounts of every node of the MySQL 8.4 compose lab (docker-compose.yml),
-- run once per node by the image entrypoint. The MariaDB labs use
-- docker/mariadb/users.sql instead (same accounts and privileges; MySQL has
-- no SLAVE MONITOR, and app needs mysql_native_password here).
--
-- Not binlogged (sql_log_bin=0): every node gets its own copy and nothing
-- about accounts travels through replication (or consumes a GTID).
SET sql_log_bin=0;

-- The application account (the [[users]] entry of splitrail).
--
-- IDENTIFIED WITH mysql_native_password: splitrail logs in to backends with
-- mysql_native_password, or with caching_sha2_password only when the server
-- answers from its cache (the fast path). A caching_sha2_password account
-- needs a full authentication (TLS or the RSA key) on the first login after
-- every server start, which splitrail cannot do yet, so its connects would
-- fail. MySQL 8.4 ships mysql_native_password disabled: node.cnf enables it
-- (mysql_native_password=ON), otherwise this statement fails.
--
-- Ordinary application privileges, deliberately no SUPER and no
-- CONNECTION_ADMIN (both bypass read_only), so a write misrouted to r1/r2
-- fails with error 1290 instead of succeeding there.
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED WITH mysql_native_password BY 'app';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER,
      CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW,
      SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER,
      REFERENCES, PROCESS
    ON *.* TO 'app'@'%';

-- For health and lag checks (SHOW REPLICA STATUS needs REPLICATION CLIENT).
CREATE USER IF NOT EXISTS 'monitor'@'%' IDENTIFIED BY 'monitor';
GRANT REPLICATION CLIENT, PROCESS ON *.* TO 'monitor'@'%';
-- splitrail fences (SET GLOBAL read_only) with this login (failover.fence),
-- and re-points replicas with it (failover.repoint_replicas).
GRANT SYSTEM_VARIABLES_ADMIN, REPLICATION_SLAVE_ADMIN ON *.* TO 'monitor'@'%';
-- monitor.heartbeat: the writer's monitor stamps splitrail.heartbeat.
GRANT CREATE, INSERT, UPDATE, SELECT ON splitrail.* TO 'monitor'@'%';

-- What replicas (and the other master) log in as. caching_sha2_password is
-- fine here: the replica asks for the RSA key (GET_SOURCE_PUBLIC_KEY=1 in
-- replication.sql).
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
