#!/usr/bin/env bash
# docker/replication.sh: the compose labs' replication step. Mounted into
# /docker-entrypoint-initdb.d/ of every database container; the official
# mysql and mariadb images *source* a non-executable *.sh there on first
# start (that is why this file is not executable), after the *.sql files
# before it, so `docker_process_sql` (run SQL as root on the init server)
# is defined.
#
# It fills in the template /splitrail-init/replication.sql — for MariaDB
# the very docker/mariadb/replication.sql that proto-tests/lab runs, for
# MySQL docker/mysql/replication.sql — and runs it:
#   SPLITRAIL_SOURCE_HOST  the service this node replicates from (required)
#   SPLITRAIL_SOURCE_PORT  its port (default 3306)
#   SPLITRAIL_INIT_DIR     where the template is (default /splitrail-init;
#                          docker/validate points it at docker/mariadb)
#
# The replica threads start on the entrypoint's temporary server, which
# does not listen on TCP yet; they retry every second until their source
# is up for real (the retry counts are set in the templates).

splitrail_replication() {
    local dir="${SPLITRAIL_INIT_DIR:-/splitrail-init}" text
    if [[ -z "${SPLITRAIL_SOURCE_HOST:-}" ]]; then
        echo "replication.sh: SPLITRAIL_SOURCE_HOST is not set" >&2
        return 1
    fi
    text="$(<"$dir/replication.sql")" || return 1
    text="${text//'{{SOURCE_HOST}}'/"$SPLITRAIL_SOURCE_HOST"}"
    text="${text//'{{SOURCE_PORT}}'/"${SPLITRAIL_SOURCE_PORT:-3306}"}"
    docker_process_sql <<<"$text"
}

splitrail_replication
