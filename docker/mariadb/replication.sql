-- Points one MariaDB lab node at its master and starts replicating.
-- A template: {{SOURCE_HOST}} and {{SOURCE_PORT}} are replaced before it
-- runs, by proto-tests/lab (127.0.0.1 and the lab port of the master) and
-- by docker/replication.sh in the compose lab (the service name of the
-- master, and 3306).
--
-- MASTER_USE_GTID=slave_pos: position by GTID, so a replica can move to
-- another master. MASTER_CONNECT_RETRY=1: a restarted master is picked up
-- within a second or two. CHANGE MASTER is persisted in the datadir, so the
-- threads resume by themselves when the node restarts.
CHANGE MASTER TO
    MASTER_HOST='{{SOURCE_HOST}}',
    MASTER_PORT={{SOURCE_PORT}},
    MASTER_USER='repl',
    MASTER_PASSWORD='repl',
    MASTER_USE_GTID=slave_pos,
    MASTER_CONNECT_RETRY=1;
START SLAVE;
