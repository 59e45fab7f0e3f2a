#!/usr/bin/env bash
# Command-line tools against splitrail or the lab directly.
#
#   cli_tools.sh --target proxy|direct
#
# Clients: the `mariadb` CLI, `mariadb-dump`, `mariadb-admin` and sysbench.
# Each scenario runs one tool invocation (or a short script of them); its
# exit code, stdout and stderr are the result, after removing what
# legitimately differs between two servers (timings, counters). Prints one
# JSON line per scenario, the same format as common.py.
set -uo pipefail

[[ "${1:-}" == --target && ( "${2:-}" == proxy || "${2:-}" == direct ) ]] || {
    echo "usage: cli_tools.sh --target proxy|direct" >&2; exit 2; }
TARGET="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
HOST="${CLIENTS_HOST:-127.0.0.1}"
USER_="${CLIENTS_USER:-app}"
PASS="${CLIENTS_PASSWORD:-app}"
DB="${CLIENTS_DB:-splitrail_test}"
RUN="${CLIENTS_RUN:-cdev}"
PROXY_PORT="${CLIENTS_PROXY_PORT:-25033}"
M1_PORT="${CLIENTS_M1_PORT:-25061}"
R1_PORT="${CLIENTS_R1_PORT:-25063}"
R2_PORT="${CLIENTS_R2_PORT:-25064}"
BLOB_MB="${CLIENTS_BLOB_MB:-32}"
ONLY="${CLIENTS_ONLY:-}"
SCENARIO_TIMEOUT="${CLIENTS_SCENARIO_TIMEOUT:-120}"
SYSBENCH_TIME="${CLIENTS_SYSBENCH_TIME:-5}"
T="${RUN}_types"
PY="${CLIENTS_PYTHON:-python3}"
# The lab's CA (it signed the certificate the MariaDB nodes and splitrail
# serve) and an unrelated one: the tls and tls_wrong_ca scenarios.
TLS_CA="${CLIENTS_TLS_CA:-/tmp/splitrail-clients-lab/tls/ca.pem}"
TLS_OTHER_CA="${CLIENTS_TLS_OTHER_CA:-/tmp/splitrail-clients-lab/tls/other-ca.pem}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/splitrail-cli.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Direct runs go where splitrail routes the scenario: reads to r1, writes
# and transactions to m1.
port_for() {
    if [[ "$TARGET" == proxy ]]; then echo "$PROXY_PORT"
    elif [[ "$1" == read ]]; then echo "$R1_PORT"
    else echo "$M1_PORT"; fi
}

# mariadb ROUTE [options...]: the CLI as app, never reading /etc/mysql.
cli() {
    local route="$1"; shift
    timeout "$SCENARIO_TIMEOUT" mariadb --no-defaults -h"$HOST" -P"$(port_for "$route")" \
        -u"$USER_" -p"$PASS" "$@"
}

wanted() { # CLIENT SCENARIO
    [[ -z "$ONLY" ]] && return 0
    [[ ",$ONLY," == *",$1,"* || ",$ONLY," == *",$2,"* ]]
}

# emit CLIENT SCENARIO STATUS RC SECONDS [REASON]: one JSON result line from
# $WORK/out and $WORK/err (normalised by `normalize` first).
emit() {
    "$PY" - "$@" "$WORK/out" "$WORK/err" <<'EOF'
import json, sys, os
client, scenario, status, rc, secs = sys.argv[1:6]
reason = sys.argv[6] if len(sys.argv) > 8 else None
out_f, err_f = sys.argv[-2], sys.argv[-1]
def text(path):
    b = open(path, "rb").read() if os.path.exists(path) else b""
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": b.hex()}  # e.g. latin1 output: compare the bytes
    return s.splitlines()
line = {"client": client, "scenario": scenario, "target": os.environ["TARGET_NAME"],
        "status": status, "secs": float(secs),
        "result": None if status == "na" else {"exit": int(rc), "stdout": text(out_f), "stderr": text(err_f)}}
if reason:
    line["reason"] = reason
print(json.dumps(line, ensure_ascii=False), flush=True)
EOF
}
export TARGET_NAME="$TARGET"

# run CLIENT SCENARIO FUNCTION: runs FUNCTION with stdout/stderr captured.
run() {
    local client="$1" scenario="$2" fn="$3" rc t0 t1
    wanted "$client" "$scenario" || return 0
    t0="$(date +%s.%N)"
    "$fn" >"$WORK/out" 2>"$WORK/err"
    rc=$?
    t1="$(date +%s.%N)"
    normalize "$WORK/out"; normalize "$WORK/err"
    local status=ok
    ((rc == 124)) && status=error  # timeout(1): a hang
    emit "$client" "$scenario" "$status" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')" \
        "$([[ $status == error ]] && echo "timed out after ${SCENARIO_TIMEOUT}s (hang?)")"
}

na() { # CLIENT SCENARIO REASON
    wanted "$1" "$2" || return 0
    : >"$WORK/out"; : >"$WORK/err"
    emit "$1" "$2" na 0 0 "$3"
}

# Remove what differs between two servers or two runs by nature; nothing
# that splitrail relays is touched.
normalize() {
    sed -i -E \
        -e 's/(Uptime|Threads|Questions|Slow queries|Opens|Open tables|Queries per second avg|Flush tables): [0-9.]+/\1: N/g' \
        -e 's/\(([0-9]+ min )?[0-9]+\.[0-9]+ sec\)/(T sec)/g' \
        -e "s#${WORK}#WORK#g" \
        "$1"
}

# ------------------------------------------------------------ mariadb CLI ----

c_connect() {
    cli read "$DB" --table -e "SELECT DATABASE(), CURRENT_USER(), @@character_set_client, VERSION()" &&
        cli read --table -e "SELECT DATABASE(), CURRENT_USER(); SELECT COUNT(*) FROM $DB.$T; USE $DB; SELECT DATABASE()"
}
c_auth_fail() { cli read "$DB" -pwrong-password -e "SELECT 1"; }
c_types_text() {
    cli read "$DB" --column-type-info --table --binary-as-hex -e "SELECT * FROM $T ORDER BY id"
    cli read "$DB" --batch --raw -e "SELECT * FROM $T ORDER BY id" | od -An -tx1 | sha256sum
}
c_txn() {
    local t="${RUN}_cli_txn"
    cli write "$DB" --table -vvv <<EOF
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id INT PRIMARY KEY, v VARCHAR(20));
BEGIN;
INSERT INTO $t VALUES (1, 'committed');
SELECT * FROM $t;
COMMIT;
START TRANSACTION;
INSERT INTO $t VALUES (2, 'rolled back');
SELECT COUNT(*) FROM $t;
ROLLBACK;
SET autocommit = 0;
INSERT INTO $t VALUES (3, 'autocommit=0');
COMMIT;
INSERT INTO $t VALUES (4, 'ac0 rolled back');
ROLLBACK;
SET autocommit = 1;
BEGIN;
SELECT * FROM $t ORDER BY id;
COMMIT;
DROP TABLE $t;
EOF
}
c_insert_id() {
    local t="${RUN}_cli_ins"
    cli write "$DB" --table -vvv <<EOF
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
INSERT INTO $t (v) VALUES (10);
INSERT INTO $t (v) VALUES (20), (30);
SELECT LAST_INSERT_ID();
BEGIN;
INSERT INTO $t (v) VALUES (40);
SELECT LAST_INSERT_ID(), ROW_COUNT();
COMMIT;
DROP TABLE $t;
EOF
}
c_multi_stmt() {
    # With another delimiter the CLI sends the whole batch as one COM_QUERY
    # (it always sets CLIENT_MULTI_STATEMENTS) and prints every result.
    local t="${RUN}_cli_multi"
    cli write "$DB" --table --force <<EOF
DROP TABLE IF EXISTS $t;
DELIMITER //
CREATE TABLE $t (id INT PRIMARY KEY); INSERT INTO $t VALUES (1),(2); SELECT * FROM $t ORDER BY id; SELECT 'x' AS x, NULL AS n; UPDATE $t SET id = id + 10//
SELECT 1; SELECT * FROM no_such_table_xyz; SELECT 3//
DELIMITER ;
BEGIN;
SELECT COUNT(*) FROM $t;
COMMIT;
DROP TABLE $t;
EOF
}
c_call() { cli write "$DB" --table --column-type-info -e "CALL ${RUN}_two_results(3); SELECT 'still in sync' AS s"; }
c_warnings() {
    local t="${RUN}_cli_warn"
    cli write "$DB" --table --show-warnings -vvv <<EOF
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(3));
INSERT IGNORE INTO $t VALUES (1, 'toolong'), (1, 'dup');
SELECT CAST('12abc' AS SIGNED) AS n, 1/0 AS z;
SHOW WARNINGS;
SHOW COUNT(*) WARNINGS;
DROP TABLE $t;
EOF
}
c_errors() {
    local t="${RUN}_cli_err"
    cli write "$DB" --table --force <<EOF
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(5) NOT NULL);
INSERT INTO $t VALUES (1, 'a');
SELECT * FROM no_such_table_xyz;
SELEC 1;
INSERT INTO $t VALUES (1, 'b');
INSERT INTO $t VALUES (2, NULL);
INSERT INTO $t VALUES (3, 'toolong');
SELECT nope FROM $T;
SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom é', MYSQL_ERRNO = 5001;
BEGIN;
SELECT * FROM $t;
COMMIT;
DROP TABLE $t;
EOF
}
c_blob() {
    # A 32 MB literal in one statement (a multi-packet command), read back in
    # a transaction (a multi-packet row); only hashes are compared.
    local t="${RUN}_cli_blob"
    "$PY" - "$WORK/blob.sql" "$t" "$BLOB_MB" <<'EOF'
import sys
path, t, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
unit = bytes(alphabet[(i * 7 + i // 36) % len(alphabet)] for i in range(4096))
data = (unit * (mb * 256 + 1))[: mb << 20]
with open(path, "wb") as f:
    f.write(b"INSERT INTO " + t.encode() + b" VALUES (1, '" + data + b"');\n")
open(path + ".sha", "w").write(__import__("hashlib").sha256(data).hexdigest())
EOF
    cli write "$DB" -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id INT PRIMARY KEY, b LONGBLOB)" &&
        cli write "$DB" --max-allowed-packet=64M <"$WORK/blob.sql" &&
        echo "expected $(cat "$WORK/blob.sql.sha")" &&
        cli write "$DB" --max-allowed-packet=64M --batch --raw --skip-column-names \
            -e "BEGIN; SELECT b FROM $t; COMMIT" | head -c $((BLOB_MB << 20)) | sha256sum | sed 's/^/got      /' &&
        cli write "$DB" -e "DROP TABLE $t"
}
c_utf8mb4() {
    local t="${RUN}_cli_utf8"
    cli write "$DB" --default-character-set=utf8mb4 --table <<EOF
SELECT c_varchar, CHAR_LENGTH(c_varchar), HEX(c_varchar) FROM $T WHERE id = 1;
SELECT '😀' AS emoji, 'ü' AS u;
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(50)) DEFAULT CHARSET=utf8mb4;
INSERT INTO $t VALUES (1, 'é 😀 中文 ñ');
BEGIN;
SELECT s, HEX(s) FROM $t;
COMMIT;
DROP TABLE $t;
EOF
}
c_latin1() {
    local t="${RUN}_cli_latin1"
    printf '%s\n' \
        "SELECT @@character_set_client, @@character_set_results, @@collation_connection;" \
        "SELECT c_varchar, HEX(c_varchar) FROM $T WHERE id = 1;" \
        "SELECT 'été' AS s, HEX('été') AS h;" \
        "DROP TABLE IF EXISTS $t;" \
        "CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4;" \
        "INSERT INTO $t VALUES (1, 'çà et là');" \
        "BEGIN; SELECT s, HEX(s) FROM $t; COMMIT;" \
        "DROP TABLE $t;" | iconv -f utf-8 -t latin1 >"$WORK/latin1.sql"
    cli write "$DB" --default-character-set=latin1 --table <"$WORK/latin1.sql"
}
c_load_local() {
    local t="${RUN}_cli_load" f="$WORK/load.tsv"
    printf '1\tfirst\n2\tsécond 😀\n3\t\\N\n4\ttoo many\textra\n' >"$f"
    cli write "$DB" --local-infile=1 --table --show-warnings -vvv --force <<EOF
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4;
LOAD DATA LOCAL INFILE '$f' INTO TABLE $t CHARACTER SET utf8mb4;
LOAD DATA LOCAL INFILE '$f.missing' INTO TABLE $t;
SELECT 'next' AS n;
BEGIN;
SELECT * FROM $t ORDER BY id;
COMMIT;
DROP TABLE $t;
EOF
}

# TLS required and verified: with --ssl-verify-server-cert the CLI refuses a
# server that does not offer TLS (with --ssl alone it would fall back to
# plain TCP) and checks the certificate against --ssl-ca and the host name.
c_tls() {
    local t="${RUN}_cli_tls" tls=(--ssl --ssl-ca="$TLS_CA" --ssl-verify-server-cert --default-character-set=utf8mb4)
    # The CLI's own connection: `status` names the cipher (which is not
    # compared: OpenSSL and rustls may agree on different ones).
    if cli read "$DB" "${tls[@]}" -e status | grep -q '^SSL:.*Cipher in use'; then
        echo "client TLS: yes"
    else
        echo "client TLS: no"
    fi
    # Whether the server session (through splitrail: its own session with
    # the backend) is TLS too.
    local ssl_on="SELECT VARIABLE_VALUE <> '' AS tls FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'"
    cli read "$DB" "${tls[@]}" --table --column-type-info \
        -e "SELECT id, c_varchar, c_decimal, c_json FROM $T ORDER BY id; SELECT 'TLS ✓ é 😀' AS s, CURRENT_USER() AS u; $ssl_on"
    cli write "$DB" "${tls[@]}" --table -vvv <<EOF
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(40)) DEFAULT CHARSET=utf8mb4;
BEGIN;
INSERT INTO $t VALUES (1, 'over TLS 😀'), (2, 'deux');
SELECT * FROM $t ORDER BY id;
$ssl_on;
COMMIT;
PREPARE ps FROM 'SELECT s, ? AS p FROM $t WHERE id = ?';
SET @p = 'é', @id = 1;
EXECUTE ps USING @p, @id;
DEALLOCATE PREPARE ps;
BEGIN;
SELECT COUNT(*) FROM $t;
COMMIT;
DROP TABLE $t;
EOF
}
# Verified against a CA that did not sign the server's certificate: the
# connect fails. Its exit code and error number are compared, not the
# message (the TLS library's text).
c_tls_wrong_ca() {
    cli read "$DB" --ssl --ssl-ca="$TLS_OTHER_CA" --ssl-verify-server-cert -e "SELECT 1" 2>"$WORK/tls_err"
    local rc=$?
    echo "exit $rc"
    grep -o '^ERROR [0-9]* ([0-9A-Z]*)' "$WORK/tls_err"
    return "$rc"
}

# ------------------------------------------------------- dump and admin ----

dump() {
    timeout "$SCENARIO_TIMEOUT" mariadb-dump --no-defaults -h"$HOST" -P"$(port_for write)" \
        -u"$USER_" -p"$PASS" --skip-dump-date "$@"
}
d_default() { dump --routines --hex-blob "$DB" "$T"; }
d_single_txn() { dump --single-transaction --skip-lock-tables "$DB" "$T"; }
d_xml() { dump --xml "$DB" "$T"; }
# TLS required and verified (as in c_tls).
d_tls() { dump --ssl --ssl-ca="$TLS_CA" --ssl-verify-server-cert --single-transaction --skip-lock-tables "$DB" "$T"; }

admin() {
    timeout "$SCENARIO_TIMEOUT" mariadb-admin --no-defaults -h"$HOST" -P"$(port_for write)" \
        -u"$USER_" -p"$PASS" "$@"
}
a_ping() { admin ping; }
a_status() { admin status; }
a_ping_wrong_password() { admin -pwrong-password ping; }
a_tls() { admin --ssl --ssl-ca="$TLS_CA" --ssl-verify-server-cert ping status; }

# --------------------------------------------------------------- sysbench ----

SB_DB="${RUN}_sb"
sb() { # ROUTE TEST [options...]
    local route="$1" test="$2"; shift 2
    timeout "$SCENARIO_TIMEOUT" sysbench "$test" --db-driver=mysql --mysql-host="$HOST" \
        --mysql-port="$(port_for "$route")" --mysql-user="$USER_" --mysql-password="$PASS" \
        --mysql-db="$SB_DB" --tables=2 --table-size=500 "$@"
}
# Only what must hold for any run: the exit code, no errors, no reconnects,
# some transactions; the numbers of queries depend on timing. Read-write runs
# use one thread: with two, InnoDB deadlocks (which sysbench ignores and
# retries) come and go with timing, directly as much as through splitrail.
sb_summary() {
    awk '/FATAL|ERROR|error:/ { print } /ignored errors:/ { print "ignored errors:", $3 } /reconnects:/ { print "reconnects:", $2 }
         /transactions:/ { print "transactions > 0:", ($2 > 0) ? "yes" : "no" }'
}
wait_replicas() { # until r1 and r2 applied everything m1 has
    local pos
    pos="$(mariadb --no-defaults -h"$HOST" -P"$M1_PORT" -u"$USER_" -p"$PASS" -N -B -e 'SELECT @@gtid_binlog_pos')"
    for p in "$R1_PORT" "$R2_PORT"; do
        mariadb --no-defaults -h"$HOST" -P"$p" -u"$USER_" -p"$PASS" -N -B \
            -e "SELECT MASTER_GTID_WAIT('$pos', 30)" | grep -qx 0 || echo "replica on $p did not catch up"
    done
}
s_prepare() {
    cli write -e "DROP DATABASE IF EXISTS $SB_DB; CREATE DATABASE $SB_DB" &&
        sb write oltp_read_write prepare | grep -v '^sysbench\|^$' | sort && wait_replicas
}
s_rw_text() { sb write oltp_read_write run --threads=1 --db-ps-mode=disable --time="$SYSBENCH_TIME" | sb_summary; }
s_rw_ps() { sb write oltp_read_write run --threads=1 --db-ps-mode=auto --time="$SYSBENCH_TIME" | sb_summary; }
# Without BEGIN/COMMIT every read is an autocommit read: splitrail sends
# them to the replicas.
s_ro_ps() { sb read oltp_read_only run --threads=2 --db-ps-mode=auto --skip_trx=on --time="$SYSBENCH_TIME" | sb_summary; }
# sysbench 1.0 has no option for a CA: --mysql-ssl=on reads cacert.pem,
# client-cert.pem and client-key.pem from the working directory, and
# libmariadb then verifies the server's certificate chain against that CA.
# It cannot require TLS (libmariadb would fall back to plain TCP), so
# sysbench_tls_wrong_ca shows that the chain is checked, that is, that TLS
# is used.
sb_tls_dir() { # CA: a directory with the files sysbench wants
    local d="$WORK/sb-tls-$(basename "$1" .pem)" lab_tls
    lab_tls="$(dirname "$TLS_CA")"
    mkdir -p "$d" && cp "$1" "$d/cacert.pem" && cp "$lab_tls/client.pem" "$d/client-cert.pem" &&
        cp "$lab_tls/client-key.pem" "$d/client-key.pem" && echo "$d"
}
s_tls() {
    local d; d="$(sb_tls_dir "$TLS_CA")" || return 1
    (cd "$d" && sb read oltp_read_only run --mysql-ssl=on --threads=2 --db-ps-mode=auto --skip_trx=on \
        --time="$SYSBENCH_TIME" | sb_summary)
}
s_tls_wrong_ca() {
    local d; d="$(sb_tls_dir "$TLS_OTHER_CA")" || return 1
    # The FATAL lines name the port: only the error number is compared.
    (cd "$d" && sb read oltp_read_only run --mysql-ssl=on --threads=1 --skip_trx=on --time=1 2>&1 |
        grep -o 'FATAL: error [0-9]*' | sort -u)
}
s_cleanup() { sb write oltp_read_write cleanup | grep -v '^sysbench\|^$' | sort; cli write -e "DROP DATABASE IF EXISTS $SB_DB"; }

# ------------------------------------------------------------------- main ----

run mariadb-cli connect c_connect
run mariadb-cli auth_fail c_auth_fail
run mariadb-cli types_text c_types_text
run mariadb-cli txn c_txn
run mariadb-cli insert_id c_insert_id
run mariadb-cli multi_stmt c_multi_stmt
run mariadb-cli call_2_results c_call
run mariadb-cli warnings c_warnings
run mariadb-cli errors c_errors
run mariadb-cli blob_32mb c_blob
run mariadb-cli utf8mb4 c_utf8mb4
run mariadb-cli latin1 c_latin1
run mariadb-cli load_local c_load_local
na mariadb-cli reset_conn "the mariadb CLI has no command for COM_RESET_CONNECTION"
na mariadb-cli change_user "the mariadb CLI has no command for COM_CHANGE_USER"
run mariadb-cli tls c_tls
run mariadb-cli tls_wrong_ca c_tls_wrong_ca

run mariadb-dump dump d_default
run mariadb-dump dump_single_txn d_single_txn
run mariadb-dump dump_xml d_xml
run mariadb-dump dump_tls d_tls

run mariadb-admin admin_ping a_ping
run mariadb-admin admin_status a_status
run mariadb-admin admin_auth_fail a_ping_wrong_password
run mariadb-admin admin_tls a_tls

run sysbench sysbench_prepare s_prepare
run sysbench sysbench_rw_text s_rw_text
run sysbench sysbench_rw_ps s_rw_ps
run sysbench sysbench_ro_ps s_ro_ps
run sysbench sysbench_tls s_tls
run sysbench sysbench_tls_wrong_ca s_tls_wrong_ca
run sysbench sysbench_cleanup s_cleanup
exit 0
