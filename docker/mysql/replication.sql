-- Points one node of the MySQL 8.4 compose lab at its source and starts
-- replicating. A template: docker/replication.sh replaces {{SOURCE_HOST}}
-- (the service name of the source) and {{SOURCE_PORT}} (3306) first.
--
-- SOURCE_AUTO_POSITION=1: GTID positioning, so a replica can be moved to
-- another source, and in the m1/m2 pair each master skips the transactions
-- it already has (its own, coming back through the other master).
-- GET_SOURCE_PUBLIC_KEY=1: repl uses caching_sha2_password; without TLS the
-- replica needs the RSA key of the source for the first login.
-- SOURCE_CONNECT_RETRY=1: a restarted source is picked up within a second
-- or two. SOURCE_RETRY_COUNT=86400: the threads start while the source may
-- still be initialising; with a 1 s interval they must not give up early.
CHANGE REPLICATION SOURCE TO
    SOURCE_HOST='{{SOURCE_HOST}}',
    SOURCE_PORT={{SOURCE_PORT}},
    SOURCE_USER='repl',
    SOURCE_PASSWORD='repl',
    SOURCE_AUTO_POSITION=1,
    GET_SOURCE_PUBLIC_KEY=1,
    SOURCE_CONNECT_RETRY=1,
    SOURCE_RETRY_COUNT=86400;
START REPLICA;
