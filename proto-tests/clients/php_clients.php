<?php
// PHP client libraries (mysqlnd) against splitrail or the lab directly.
//
//   php -d mysqli.allow_local_infile=1 php_clients.php --target proxy|direct
//
// Clients: PDO with emulated prepares (the PDO default: parameters are
// interpolated client-side, one COM_QUERY), PDO with native prepares
// (COM_STMT_PREPARE/EXECUTE, binary rows), and mysqli (query, prepared
// statements with send_long_data, multi_query, change_user). Prints one JSON
// line per scenario, the same format as common.py.

declare(strict_types=1);
error_reporting(E_ALL);
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);

$opts = getopt('', ['target:']);
$TARGET = $opts['target'] ?? '';
if ($TARGET !== 'proxy' && $TARGET !== 'direct') {
    fwrite(STDERR, "usage: php_clients.php --target proxy|direct\n");
    exit(2);
}
$HOST = getenv('CLIENTS_HOST') ?: '127.0.0.1';
$USER = getenv('CLIENTS_USER') ?: 'app';
$PASS = getenv('CLIENTS_PASSWORD') ?: 'app';
$DB = getenv('CLIENTS_DB') ?: 'splitrail_test';
$RUN = getenv('CLIENTS_RUN') ?: 'cdev';
$PORTS = [
    'proxy' => (int)(getenv('CLIENTS_PROXY_PORT') ?: 25033),
    'm1' => (int)(getenv('CLIENTS_M1_PORT') ?: 25061),
    'r1' => (int)(getenv('CLIENTS_R1_PORT') ?: 25063),
];
$BLOB_MB = (int)(getenv('CLIENTS_BLOB_MB') ?: 32);
$ONLY = getenv('CLIENTS_ONLY') ?: '';
// The lab's CA (it signed the certificate the MariaDB nodes and splitrail
// serve) and an unrelated one: the tls and tls_wrong_ca scenarios.
$TLS_CA = getenv('CLIENTS_TLS_CA') ?: '/tmp/splitrail-clients-lab/tls/ca.pem';
$TLS_OTHER_CA = getenv('CLIENTS_TLS_OTHER_CA') ?: '/tmp/splitrail-clients-lab/tls/other-ca.pem';
// Whether the session splitrail (or the client, directly) has with the
// server is TLS: its Ssl_cipher is set.
const SSL_ON = "SELECT VARIABLE_VALUE <> '' AS tls FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'";
$T = "{$RUN}_types";

class NA extends Exception {}

// Direct runs go where splitrail routes the scenario: reads to r1, writes
// and transactions to m1.
function port_for(string $route): int {
    global $TARGET, $PORTS;
    if ($TARGET === 'proxy') return $PORTS['proxy'];
    return $route === 'read' ? $PORTS['r1'] : $PORTS['m1'];
}

function blob_of(int $n): string {
    $unit = '';
    for ($i = 0; $i < 256; $i++) $unit .= chr($i);
    $unit .= strrev($unit);
    return substr(str_repeat($unit, intdiv($n, 512) + 1), 0, $n);
}

function digest(string $b): string { return substr(hash('sha256', $b), 0, 16); }

// A PHP value as [gettype, comparable JSON form]; long or non-UTF-8
// strings become length + hash / hex.
function enc($v) {
    $t = gettype($v);
    if (is_string($v)) {
        if (strlen($v) > 200) return [$t, ['len' => strlen($v), 'sha256' => digest($v)]];
        if (preg_match('//u', $v) !== 1) return [$t, ['hex' => bin2hex($v)]];
        return [$t, $v];
    }
    if (is_float($v)) return [$t, var_export($v, true)];
    if (is_int($v)) return [$t, (string)$v];
    if (is_array($v)) return [$t, array_map('enc', $v)];
    if (is_object($v)) return [get_class($v), var_export($v, true)];
    return [$t, $v];
}

function enc_rows(array $rows): array {
    return array_map(fn($r) => array_map('enc', array_values($r)), $rows);
}

function emit(string $client, string $scenario, string $status, $result = null, ?string $reason = null, float $secs = 0.0): void {
    global $TARGET;
    $line = ['client' => $client, 'scenario' => $scenario, 'target' => $TARGET,
             'status' => $status, 'result' => $result, 'secs' => round($secs, 3)];
    if ($reason !== null) $line['reason'] = $reason;
    $json = json_encode($line, JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE | JSON_PRESERVE_ZERO_FRACTION);
    if ($json === false) $json = json_encode(['client' => $client, 'scenario' => $scenario, 'target' => $TARGET,
        'status' => 'error', 'result' => ['exception' => 'json', 'message' => json_last_error_msg()]]);
    echo $json, "\n";
}

function run_scenario(string $client, string $scenario, callable $fn): void {
    global $ONLY;
    if ($ONLY !== '' && !in_array($client, explode(',', $ONLY)) && !in_array($scenario, explode(',', $ONLY))) return;
    $t0 = microtime(true);
    try {
        $r = $fn();
        emit($client, $scenario, 'ok', $r, null, microtime(true) - $t0);
    } catch (NA $e) {
        emit($client, $scenario, 'na', null, $e->getMessage(), microtime(true) - $t0);
    } catch (Throwable $e) {
        emit($client, $scenario, 'error', ['exception' => get_class($e), 'message' => substr($e->getMessage(), 0, 500)],
             $e->getFile() . ':' . $e->getLine() . "\n" . substr($e->getTraceAsString(), 0, 1500), microtime(true) - $t0);
    }
}

function err_of(Throwable $e): array {
    if ($e instanceof PDOException) {
        return ['class' => get_class($e), 'code' => $e->getCode(), 'errorInfo' => $e->errorInfo, 'message' => $e->getMessage()];
    }
    if ($e instanceof mysqli_sql_exception) {
        return ['class' => get_class($e), 'code' => $e->getCode(), 'sqlstate' => $e->getSqlState(), 'message' => $e->getMessage()];
    }
    return ['class' => get_class($e), 'message' => $e->getMessage()];
}

function error_of(callable $fn) {
    try { $fn(); } catch (NA $e) { throw $e; } catch (Throwable $e) { return err_of($e); }
    return 'no error raised';
}

// A connect that must fail (tls_wrong_ca): whether it did, with the error's
// class and code, not its message (the TLS library's text). PHP's own
// warnings about the failed handshake are silenced.
function connect_fails(callable $fn): array {
    $level = error_reporting(0);
    try { $fn(); } catch (NA $e) { throw $e; } catch (Throwable $e) {
        return ['failed' => true, 'class' => get_class($e), 'code' => $e->getCode()];
    } finally { error_reporting($level); }
    return ['failed' => false];
}

function param_values(string $big): array {
    // NULL, int, BIGINT min, unsigned BIGINT max (a string: PHP ints are
    // signed 64-bit), double, decimal string, text, utf8mb4, bytes, 1 MB BLOB,
    // DATETIME(6), DATE, negative TIME, boolean.
    return [null, 42, PHP_INT_MIN, '18446744073709551615', 3.5, '-1234567.891', 'plain', 'é😀 ünï',
            "\x00\xff\x10\x00", $big, '2024-02-29 23:59:59.123456', '2024-01-02', '-838:59:59', true];
}

// ------------------------------------------------------------------ PDO ----

class PdoClient {
    public string $name;
    public function __construct(public bool $emulate) {
        $this->name = $emulate ? 'pdo-emulated' : 'pdo-native';
    }

    function connect(string $route, array $o = []): PDO {
        global $HOST, $USER, $PASS, $DB;
        $dsn = "mysql:host=$HOST;port=" . port_for($route) . ';charset=' . ($o['charset'] ?? 'utf8mb4');
        if ($o['db'] ?? true) $dsn .= ";dbname=$DB";
        $attrs = [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_EMULATE_PREPARES => $this->emulate,
            PDO::ATTR_TIMEOUT => 10,
            PDO::MYSQL_ATTR_LOCAL_INFILE => (bool)($o['local_infile'] ?? false),
            PDO::MYSQL_ATTR_MULTI_STATEMENTS => (bool)($o['multi'] ?? false),
        ];
        if (isset($o['tls'])) {
            // TLS (mysqlnd asks for it once an SSL option is set) with the
            // server's certificate and name (127.0.0.1) verified.
            $attrs[PDO::MYSQL_ATTR_SSL_CA] = $o['tls'];
            $attrs[PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT] = true;
        }
        return new PDO($dsn, $USER, $o['password'] ?? $PASS, $attrs);
    }

    function meta(PDOStatement $st): array {
        $m = [];
        for ($i = 0; $i < $st->columnCount(); $i++) $m[] = $st->getColumnMeta($i);
        return $m;
    }

    // One statement, everything PDO exposes about its result.
    function q(PDO $c, string $sql, ?array $params = null): array {
        if ($params === null) {
            $st = $c->query($sql);
        } else {
            $st = $c->prepare($sql);
            foreach (array_values($params) as $i => $v) {
                $type = is_null($v) ? PDO::PARAM_NULL : (is_int($v) ? PDO::PARAM_INT : (is_bool($v) ? PDO::PARAM_BOOL : PDO::PARAM_STR));
                $st->bindValue($i + 1, $v, $type);
            }
            $st->execute();
        }
        $out = ['rowCount' => $st->rowCount(), 'columnCount' => $st->columnCount()];
        if ($st->columnCount() > 0) {
            $out['meta'] = $this->meta($st);
            $out['rows'] = enc_rows($st->fetchAll(PDO::FETCH_NUM));
        }
        $st->closeCursor();
        return $out;
    }

    function sets(PDOStatement $st): array {
        $sets = [];
        do {
            if ($st->columnCount() > 0) {
                $sets[] = ['meta' => $this->meta($st), 'rows' => enc_rows($st->fetchAll(PDO::FETCH_NUM))];
            } else {
                $sets[] = ['rowCount' => $st->rowCount()];
            }
        } while ($st->nextRowset());
        return $sets;
    }
}

function pdo_scenarios(PdoClient $a): array {
    global $T, $DB, $RUN, $BLOB_MB;
    $tbl = fn(string $s) => "{$RUN}_" . str_replace('-', '_', $a->name) . "_$s";
    return [
        'connect' => function () use ($a, $T, $DB) {
            $c = $a->connect('read');
            $out = ['with_db' => $a->q($c, 'SELECT DATABASE(), CURRENT_USER(), @@character_set_client, @@collation_connection, VERSION()'),
                    'server_version' => $c->getAttribute(PDO::ATTR_SERVER_VERSION)];
            $c = $a->connect('read', ['db' => false]);
            $out['without_db'] = $a->q($c, 'SELECT DATABASE(), CURRENT_USER()');
            $out['qualified'] = $a->q($c, "SELECT COUNT(*) FROM $DB.$T");
            return $out;
        },
        'auth_fail' => fn() => error_of(fn() => $a->connect('read', ['password' => 'wrong-password'])),
        'types_text' => function () use ($a, $T) {
            if (!$a->emulate) throw new NA('PDO with native prepares sends every query as a prepared statement: see types_binary');
            return $a->q($a->connect('read'), "SELECT * FROM $T ORDER BY id");
        },
        'types_binary' => function () use ($a, $T) {
            if ($a->emulate) throw new NA('emulated prepares never use the binary protocol');
            return $a->q($a->connect('read'), "SELECT * FROM $T WHERE id >= ? ORDER BY id", [0]);
        },
        'params' => function () use ($a) {
            $c = $a->connect('read');
            $vals = param_values(blob_of(1 << 20));
            $out = ['each' => []];
            foreach ($vals as $v) $out['each'][] = $a->q($c, 'SELECT ? AS p', [$v]);
            $out['all'] = $a->q($c, 'SELECT ' . implode(', ', array_fill(0, count($vals), '?')), $vals);
            return $out;
        },
        'params_dml' => function () use ($a, $tbl) {
            $t = $tbl('pdml');
            $c = $a->connect('write');
            $c->exec("DROP TABLE IF EXISTS $t");
            $c->exec("CREATE TABLE $t (id INT PRIMARY KEY, n INT, b BIGINT, ub BIGINT UNSIGNED, d DOUBLE, dec_ DECIMAL(10,3), s VARCHAR(20), e VARCHAR(20), vb VARBINARY(8), bl MEDIUMBLOB, dt DATETIME(6), da DATE, ti TIME, bo TINYINT(1)) DEFAULT CHARSET=utf8mb4");
            $vals = array_slice(param_values(blob_of(1 << 20)), 1);
            $out = ['insert' => $a->q($c, "INSERT INTO $t VALUES (1, " . implode(', ', array_fill(0, 13, '?')) . ')', $vals)];
            // A LOB parameter bound from a stream.
            $st = $c->prepare("INSERT INTO $t (id, bl) VALUES (2, ?)");
            $fp = fopen('php://memory', 'r+'); fwrite($fp, blob_of(300000)); rewind($fp);
            $st->bindParam(1, $fp, PDO::PARAM_LOB);
            $st->execute();
            $out['insert_lob'] = $st->rowCount();
            $out['update'] = $a->q($c, "UPDATE $t SET s = ?, ti = ? WHERE id = ?", ['updated', '-00:00:00.5', 1]);
            $c->beginTransaction();
            $out['read'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
            $c->commit();
            $out['delete'] = $a->q($c, "DELETE FROM $t WHERE id = ?", [2]);
            $c->exec("DROP TABLE $t");
            return $out;
        },
        'txn' => function () use ($a, $tbl) {
            $t = $tbl('txn');
            $c = $a->connect('write');
            $c->exec("DROP TABLE IF EXISTS $t");
            $c->exec("CREATE TABLE $t (id INT PRIMARY KEY, v VARCHAR(20))");
            $out = [];
            $c->beginTransaction();
            $out['ins1'] = $a->q($c, "INSERT INTO $t VALUES (1, 'committed')");
            $out['in_txn_1'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
            $out['inTransaction'] = $c->inTransaction();
            $c->commit();
            $c->beginTransaction();
            $c->exec("INSERT INTO $t VALUES (2, 'rolled back')");
            $out['in_txn_2'] = $a->q($c, "SELECT COUNT(*) FROM $t");
            $c->rollBack();
            $c->setAttribute(PDO::ATTR_AUTOCOMMIT, false);
            $c->exec("INSERT INTO $t VALUES (3, 'autocommit=0')");
            $out['ac0'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
            $c->exec('COMMIT');
            $c->exec("INSERT INTO $t VALUES (4, 'ac0 rolled back')");
            $c->exec('ROLLBACK');
            $c->setAttribute(PDO::ATTR_AUTOCOMMIT, true);
            $c = $a->connect('write');
            $c->beginTransaction();
            $out['fresh_connection'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
            $c->commit();
            $c->exec("DROP TABLE $t");
            return $out;
        },
        'insert_id' => function () use ($a, $tbl) {
            $t = $tbl('ins');
            $c = $a->connect('write');
            $c->exec("DROP TABLE IF EXISTS $t");
            $c->exec("CREATE TABLE $t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
            $out = [];
            $c->exec("INSERT INTO $t (v) VALUES (10)");
            $out['lastInsertId_1'] = $c->lastInsertId();
            $a->q($c, "INSERT INTO $t (v) VALUES (?), (?)", [20, 30]);
            $out['lastInsertId_multi'] = $c->lastInsertId();
            $out['last_insert_id'] = $a->q($c, 'SELECT LAST_INSERT_ID()');
            $c->beginTransaction();
            $c->exec("INSERT INTO $t (v) VALUES (40)");
            $out['in_txn'] = $a->q($c, 'SELECT LAST_INSERT_ID(), ROW_COUNT()');
            $c->commit();
            $c->exec("DROP TABLE $t");
            return $out;
        },
        'multi_stmt' => function () use ($a, $tbl) {
            $t = $tbl('multi');
            $c = $a->connect('write', ['multi' => true]);
            $c->exec("DROP TABLE IF EXISTS $t");
            $out = [];
            try {
                $st = $c->query("CREATE TABLE $t (id INT PRIMARY KEY); INSERT INTO $t VALUES (1),(2); SELECT * FROM $t ORDER BY id; SELECT 'x' AS x, NULL AS n; UPDATE $t SET id = id + 10");
                $out['sets'] = $a->sets($st);
            } catch (Throwable $e) {
                $out['sets'] = err_of($e);  // native prepares cannot prepare a batch
            }
            $out['error_batch'] = error_of(function () use ($a, $c) {
                $a->sets($c->query('SELECT 1; SELECT * FROM no_such_table_xyz; SELECT 3'));
            });
            $c = $a->connect('write');
            $c->exec("DROP TABLE IF EXISTS $t");
            return $out;
        },
        'call_2_results' => function () use ($a, $RUN) {
            $c = $a->connect('write');
            $out = ['sets' => $a->sets($c->query("CALL {$RUN}_two_results(3)"))];
            $out['after'] = $a->q($c, "SELECT 'still in sync' AS s");
            return $out;
        },
        'warnings' => function () use ($a, $tbl) {
            $t = $tbl('warn');
            $c = $a->connect('write');
            $c->exec("DROP TABLE IF EXISTS $t");
            $c->exec("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(3))");
            $out = ['insert_ignore' => $a->q($c, "INSERT IGNORE INTO $t VALUES (1, 'toolong'), (1, 'dup')")];
            $out['show_after_insert'] = $a->q($c, 'SHOW WARNINGS');
            $out['select_cast'] = $a->q($c, "SELECT CAST('12abc' AS SIGNED) AS n, 1/0 AS z");
            $out['warning_count'] = $a->q($c, 'SELECT @@warning_count');
            $out['show_after_select'] = $a->q($c, 'SHOW WARNINGS');
            $c->exec("DROP TABLE $t");
            return $out;
        },
        'errors' => function () use ($a, $tbl, $T) {
            $t = $tbl('err');
            $c = $a->connect('write');
            $c->exec("DROP TABLE IF EXISTS $t");
            $c->exec("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(5) NOT NULL)");
            $c->exec("INSERT INTO $t VALUES (1, 'a')");
            $out = [
                'no_table' => error_of(fn() => $a->q($c, 'SELECT * FROM no_such_table_xyz')),
                'syntax' => error_of(fn() => $a->q($c, 'SELEC 1')),
                'dup_key' => error_of(fn() => $a->q($c, "INSERT INTO $t VALUES (1, 'b')")),
                'not_null' => error_of(fn() => $a->q($c, "INSERT INTO $t VALUES (2, NULL)")),
                'too_long' => error_of(fn() => $a->q($c, "INSERT INTO $t VALUES (3, 'toolong')")),
                'unknown_column' => error_of(fn() => $a->q($c, "SELECT nope FROM $T")),
                'signal' => error_of(fn() => $a->q($c, "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom é', MYSQL_ERRNO = 5001")),
                'prepare_error' => error_of(fn() => $a->q($c, 'SELECT * FROM no_such_table_xyz WHERE id = ?', [1])),
                'execute_error' => error_of(fn() => $a->q($c, "INSERT INTO $t VALUES (?, ?)", [1, 'dup'])),
            ];
            $c->beginTransaction();
            $out['after'] = $a->q($c, "SELECT * FROM $t");
            $c->commit();
            $c->exec("DROP TABLE $t");
            return $out;
        },
        'blob_32mb' => function () use ($a, $tbl, $BLOB_MB) {
            $t = $tbl('blob');
            $big = blob_of($BLOB_MB << 20);
            $c = $a->connect('write');
            $c->exec("DROP TABLE IF EXISTS $t");
            $c->exec("CREATE TABLE $t (id INT PRIMARY KEY, b LONGBLOB)");
            $st = $c->prepare("INSERT INTO $t VALUES (1, ?)");
            $st->bindValue(1, $big, PDO::PARAM_LOB);
            $st->execute();
            $out = ['insert_rowcount' => $st->rowCount()];
            $c->beginTransaction();
            $row = $c->query("SELECT b, LENGTH(b), SHA2(b, 256) = '" . hash('sha256', $big) . "' FROM $t")->fetch(PDO::FETCH_NUM);
            $c->commit();
            $out['read_back'] = ['type' => gettype($row[0]), 'len' => strlen($row[0]), 'same_bytes' => $row[0] === $big,
                                 'server_len' => enc($row[1]), 'server_sha_match' => enc($row[2])];
            $c->exec("DROP TABLE $t");
            return $out;
        },
        'utf8mb4' => function () use ($a, $tbl, $T) {
            $t = $tbl('utf8');
            $s = "é 😀 中文 ñ 🧑\u{200D}💻";
            $c = $a->connect('write');
            $out = ['fixture' => $a->q($c, "SELECT c_varchar, CHAR_LENGTH(c_varchar), HEX(c_varchar) FROM $T WHERE id = 1"),
                    'literal' => $a->q($c, "SELECT '😀' AS emoji, 'ü' AS u")];
            $c->exec("DROP TABLE IF EXISTS $t");
            $c->exec("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(50)) DEFAULT CHARSET=utf8mb4");
            $a->q($c, "INSERT INTO $t VALUES (1, ?)", [$s]);
            $c->beginTransaction();
            $out['read_back'] = $a->q($c, "SELECT s, HEX(s), s = ? FROM $t", [$s]);
            $c->commit();
            $c->exec("DROP TABLE $t");
            return $out;
        },
        'latin1' => function () use ($a, $tbl, $T) {
            $t = $tbl('latin1');
            $c = $a->connect('write', ['charset' => 'latin1']);
            $out = ['vars' => $a->q($c, 'SELECT @@character_set_client, @@character_set_results, @@collation_connection'),
                    'fixture' => $a->q($c, "SELECT c_varchar, HEX(c_varchar) FROM $T WHERE id = 1"),
                    'literal' => $a->q($c, "SELECT '" . "\xe9t\xe9" . "' AS s")];
            $c->exec("DROP TABLE IF EXISTS $t");
            $c->exec("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4");
            $a->q($c, "INSERT INTO $t VALUES (1, ?)", ["\xe7\xe0 et l\xe0"]);
            $c->beginTransaction();
            $out['read_back'] = $a->q($c, "SELECT s, HEX(s) FROM $t");
            $c->commit();
            $c->exec("DROP TABLE $t");
            return $out;
        },
        'load_local' => function () use ($a, $tbl) {
            $t = $tbl('load');
            $path = sys_get_temp_dir() . "/$t.tsv";
            file_put_contents($path, "1\tfirst\n2\tsécond 😀\n3\t\\N\n4\ttoo many\textra\n");
            try {
                $c = $a->connect('write', ['local_infile' => true]);
                $c->exec("DROP TABLE IF EXISTS $t");
                $c->exec("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4");
                $out = ['load' => $c->exec("LOAD DATA LOCAL INFILE '$path' INTO TABLE $t CHARACTER SET utf8mb4")];
                $out['warnings'] = $a->q($c, 'SHOW WARNINGS');
                $c2 = $a->connect('write', ['local_infile' => true]);
                $out['missing_file'] = error_of(fn() => $c2->exec("LOAD DATA LOCAL INFILE '$path.missing' INTO TABLE $t"));
                $out['next_command'] = error_of(fn() => $out['next'] = $a->q($c2, "SELECT 'next' AS n"));
                $c->beginTransaction();
                $out['read_back'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
                $c->commit();
                $c->exec("DROP TABLE $t");
                return $out;
            } finally {
                @unlink($path);
            }
        },
        'reset_conn' => fn() => throw new NA('PDO has no API for COM_RESET_CONNECTION'),
        'change_user' => fn() => throw new NA('PDO has no API for COM_CHANGE_USER'),
        // TLS required and verified against the lab's CA: a read, a write in
        // a transaction, a parameterized statement (prepared natively by
        // pdo-native). PDO does not say whether its socket is TLS:
        // tls_wrong_ca shows it verifies (so it does TLS).
        'tls' => function () use ($a, $tbl, $T) {
            global $TLS_CA;
            $t = $tbl('tls');
            $c = $a->connect('read', ['tls' => $TLS_CA]);
            $out = ['read' => $a->q($c, "SELECT id, c_varchar, c_decimal, c_json FROM $T ORDER BY id"),
                    'read_literal' => $a->q($c, "SELECT 'TLS ✓ é 😀' AS s, CURRENT_USER() AS u"),
                    'read_session_tls' => $a->q($c, SSL_ON)];
            $c = $a->connect('write', ['tls' => $TLS_CA]);
            $c->exec("DROP TABLE IF EXISTS $t");
            $c->exec("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(40)) DEFAULT CHARSET=utf8mb4");
            $c->beginTransaction();
            $out['insert'] = $a->q($c, "INSERT INTO $t VALUES (?, ?), (?, ?)", [1, 'over TLS 😀', 2, 'deux']);
            $out['in_txn'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
            $out['write_session_tls'] = $a->q($c, SSL_ON);
            $c->commit();
            $out['prepared'] = $a->q($c, "SELECT s, ? FROM $t WHERE id = ?", ['é', 1]);
            $c->beginTransaction();
            $out['after_commit'] = $a->q($c, "SELECT COUNT(*) FROM $t");
            $c->commit();
            $c->exec("DROP TABLE $t");
            return $out;
        },
        'tls_wrong_ca' => fn() => connect_fails(fn() => $a->connect('read', ['tls' => $GLOBALS['TLS_OTHER_CA']])),
    ];
}

// --------------------------------------------------------------- mysqli ----

class MysqliClient {
    public string $name = 'mysqli';

    function connect(string $route, array $o = []): mysqli {
        global $HOST, $USER, $PASS, $DB;
        $c = mysqli_init();
        $c->options(MYSQLI_OPT_CONNECT_TIMEOUT, 10);
        $c->options(MYSQLI_OPT_READ_TIMEOUT, $o['timeout'] ?? 90);
        $c->options(MYSQLI_OPT_LOCAL_INFILE, (bool)($o['local_infile'] ?? false));
        $c->options(MYSQLI_SET_CHARSET_NAME, $o['charset'] ?? 'utf8mb4');
        $flags = 0;
        if (isset($o['tls'])) {
            // TLS required, the server's certificate and name verified.
            $c->ssl_set(null, null, $o['tls'], null, null);
            $c->options(MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
            $flags = MYSQLI_CLIENT_SSL;
        }
        $c->real_connect($GLOBALS['HOST'], $USER, $o['password'] ?? $PASS, ($o['db'] ?? true) ? $DB : null, port_for($route), null, $flags);
        return $c;
    }

    function fields($res): array {
        return array_map(fn($f) => (array)$f, $res->fetch_fields());
    }

    function q(mysqli $c, string $sql): array {
        $res = $c->query($sql);
        $out = ['affected_rows' => $c->affected_rows, 'warning_count' => $c->warning_count, 'info' => $c->info];
        if ($res instanceof mysqli_result) {
            $out['meta'] = $this->fields($res);
            $out['rows'] = enc_rows($res->fetch_all(MYSQLI_NUM));
            $res->free();
        }
        return $out;
    }

    // A prepared statement (binary protocol); $types as for bind_param,
    // 'b' parameters are sent with send_long_data.
    function ps(mysqli $c, string $sql, string $types = '', array $params = []): array {
        $st = $c->prepare($sql);
        $out = ['param_count' => $st->param_count, 'field_count' => $st->field_count];
        if ($types !== '') {
            $bind = [];
            foreach ($params as $i => $v) $bind[$i] = $types[$i] === 'b' ? null : $v;
            $st->bind_param($types, ...$bind);
            foreach ($params as $i => $v) {
                if ($types[$i] === 'b') {
                    foreach (str_split($v, 1 << 18) as $chunk) $st->send_long_data($i, $chunk);
                }
            }
        }
        $st->execute();
        $out['affected_rows'] = $st->affected_rows;
        $out['insert_id'] = $st->insert_id;
        $out['warning_count'] = $c->warning_count;
        $res = $st->get_result();
        if ($res instanceof mysqli_result) {
            $out['meta'] = $this->fields($res);
            $out['rows'] = enc_rows($res->fetch_all(MYSQLI_NUM));
        }
        $st->close();
        return $out;
    }

    function multi(mysqli $c, string $sql): array {
        $sets = [];
        $c->multi_query($sql);
        do {
            $res = $c->store_result();
            if ($res instanceof mysqli_result) {
                $sets[] = ['meta' => $this->fields($res), 'rows' => enc_rows($res->fetch_all(MYSQLI_NUM))];
                $res->free();
            } else {
                $sets[] = ['affected_rows' => $c->affected_rows];
            }
        } while ($c->more_results() && $c->next_result());
        return $sets;
    }
}

function mysqli_scenarios(MysqliClient $a): array {
    global $T, $DB, $RUN, $BLOB_MB, $USER, $PASS;
    $tbl = fn(string $s) => "{$RUN}_mysqli_$s";
    return [
        'connect' => function () use ($a, $T, $DB) {
            $c = $a->connect('read');
            $out = ['with_db' => $a->q($c, 'SELECT DATABASE(), CURRENT_USER(), @@character_set_client, @@collation_connection, VERSION()'),
                    'server_info' => $c->server_info, 'server_version' => $c->server_version, 'protocol' => $c->protocol_version,
                    'character_set_name' => $c->character_set_name()];
            $c = $a->connect('read', ['db' => false]);
            $out['without_db'] = $a->q($c, 'SELECT DATABASE(), CURRENT_USER()');
            $out['qualified'] = $a->q($c, "SELECT COUNT(*) FROM $DB.$T");
            $out['select_db'] = $c->select_db($DB);
            $out['after_select_db'] = $a->q($c, 'SELECT DATABASE()');
            return $out;
        },
        'auth_fail' => fn() => error_of(fn() => $a->connect('read', ['password' => 'wrong-password'])),
        'types_text' => fn() => $a->q($a->connect('read'), "SELECT * FROM $T ORDER BY id"),
        'types_binary' => fn() => $a->ps($a->connect('read'), "SELECT * FROM $T WHERE id >= ? ORDER BY id", 'i', [0]),
        'params' => function () use ($a) {
            $c = $a->connect('read');
            $vals = param_values(blob_of(1 << 20));
            $vals[13] = 1;
            $types = 'siisdsssbbsssi';  // 'b': the 1 MB BLOB and the bytes go via send_long_data
            $out = ['each' => []];
            foreach ($vals as $i => $v) $out['each'][] = $a->ps($c, 'SELECT ? AS p', $types[$i], [$v]);
            $out['all'] = $a->ps($c, 'SELECT ' . implode(', ', array_fill(0, count($vals), '?')), $types, $vals);
            return $out;
        },
        'params_dml' => function () use ($a, $tbl) {
            $t = $tbl('pdml');
            $c = $a->connect('write');
            $c->query("DROP TABLE IF EXISTS $t");
            $c->query("CREATE TABLE $t (id INT PRIMARY KEY, n INT, b BIGINT, ub BIGINT UNSIGNED, d DOUBLE, dec_ DECIMAL(10,3), s VARCHAR(20), e VARCHAR(20), vb VARBINARY(8), bl MEDIUMBLOB, dt DATETIME(6), da DATE, ti TIME, bo TINYINT(1)) DEFAULT CHARSET=utf8mb4");
            $vals = array_slice(param_values(blob_of(1 << 20)), 1);
            $vals[12] = 1;
            $out = ['insert' => $a->ps($c, "INSERT INTO $t VALUES (1, " . implode(', ', array_fill(0, 13, '?')) . ')', 'iisdsssbbsssi', $vals)];
            $out['insert_nulls'] = $a->ps($c, "INSERT INTO $t (id, n, bl, dt) VALUES (?, ?, ?, ?)", 'iiss', [2, null, null, null]);
            $out['update'] = $a->ps($c, "UPDATE $t SET s = ?, ti = ? WHERE id = ?", 'ssi', ['updated', '-00:00:00.5', 1]);
            $c->begin_transaction();
            $out['read'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
            $out['read_binary'] = $a->ps($c, "SELECT * FROM $t WHERE id > ? ORDER BY id", 'i', [0]);
            $c->commit();
            $out['delete'] = $a->ps($c, "DELETE FROM $t WHERE id = ?", 'i', [2]);
            $c->query("DROP TABLE $t");
            return $out;
        },
        'txn' => function () use ($a, $tbl) {
            $t = $tbl('txn');
            $c = $a->connect('write');
            $c->query("DROP TABLE IF EXISTS $t");
            $c->query("CREATE TABLE $t (id INT PRIMARY KEY, v VARCHAR(20))");
            $out = [];
            $c->begin_transaction();
            $out['ins1'] = $a->q($c, "INSERT INTO $t VALUES (1, 'committed')");
            $out['in_txn_1'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
            $c->commit();
            $c->begin_transaction();
            $c->query("INSERT INTO $t VALUES (2, 'rolled back')");
            $out['in_txn_2'] = $a->q($c, "SELECT COUNT(*) FROM $t");
            $c->rollback();
            $c->autocommit(false);
            $c->query("INSERT INTO $t VALUES (3, 'autocommit=0')");
            $out['ac0'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
            $c->commit();
            $c->query("INSERT INTO $t VALUES (4, 'ac0 rolled back')");
            $c->rollback();
            $c->autocommit(true);
            // A read-only transaction may legitimately run on a replica: it
            // reads the (long replicated) fixture, not the rows just written.
            $c->begin_transaction(MYSQLI_TRANS_START_READ_ONLY);
            $out['read_only_txn'] = $a->q($c, "SELECT id, c_varchar FROM {$GLOBALS['T']} ORDER BY id");
            $c->commit();
            $c = $a->connect('write');
            $c->begin_transaction();
            $out['fresh_connection'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
            $c->commit();
            $c->query("DROP TABLE $t");
            return $out;
        },
        'insert_id' => function () use ($a, $tbl) {
            $t = $tbl('ins');
            $c = $a->connect('write');
            $c->query("DROP TABLE IF EXISTS $t");
            $c->query("CREATE TABLE $t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
            $out = [];
            $c->query("INSERT INTO $t (v) VALUES (10)");
            $out['insert_id_1'] = $c->insert_id;
            $out['ps'] = $a->ps($c, "INSERT INTO $t (v) VALUES (?), (?)", 'ii', [20, 30]);
            $out['insert_id_multi'] = $c->insert_id;
            $out['last_insert_id'] = $a->q($c, 'SELECT LAST_INSERT_ID()');
            $c->begin_transaction();
            $c->query("INSERT INTO $t (v) VALUES (40)");
            $out['in_txn'] = $a->q($c, 'SELECT LAST_INSERT_ID(), ROW_COUNT()');
            $c->commit();
            $c->query("DROP TABLE $t");
            return $out;
        },
        'multi_stmt' => function () use ($a, $tbl) {
            $t = $tbl('multi');
            $c = $a->connect('write');
            $c->query("DROP TABLE IF EXISTS $t");
            $out = ['sets' => $a->multi($c, "CREATE TABLE $t (id INT PRIMARY KEY); INSERT INTO $t VALUES (1),(2); SELECT * FROM $t ORDER BY id; SELECT 'x' AS x, NULL AS n; UPDATE $t SET id = id + 10")];
            $out['error_batch'] = error_of(fn() => $a->multi($c, 'SELECT 1; SELECT * FROM no_such_table_xyz; SELECT 3'));
            $c->begin_transaction();
            $out['after'] = $a->q($c, "SELECT COUNT(*) FROM $t");
            $c->commit();
            $c->query("DROP TABLE $t");
            return $out;
        },
        'call_2_results' => function () use ($a, $RUN) {
            $c = $a->connect('write');
            $out = ['text' => $a->multi($c, "CALL {$RUN}_two_results(3)")];
            // CALL as a prepared statement: one result set per execute/next_result.
            $st = $c->prepare("CALL {$RUN}_two_results(?)");
            $n = 2;
            $st->bind_param('i', $n);
            $st->execute();
            $sets = [];
            do {
                $res = $st->get_result();
                if ($res instanceof mysqli_result) $sets[] = enc_rows($res->fetch_all(MYSQLI_NUM));
            } while ($st->more_results() && $st->next_result());
            $st->close();
            $out['prepared'] = $sets;
            $out['after'] = $a->q($c, "SELECT 'still in sync' AS s");
            return $out;
        },
        'warnings' => function () use ($a, $tbl) {
            $t = $tbl('warn');
            $c = $a->connect('write');
            $c->query("DROP TABLE IF EXISTS $t");
            $c->query("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(3))");
            $w = function () use ($c) {
                $list = [];
                $x = $c->get_warnings();
                if ($x) do { $list[] = [$x->errno, $x->sqlstate, $x->message]; } while ($x->next());
                return $list;
            };
            $out = ['insert_ignore' => $a->q($c, "INSERT IGNORE INTO $t VALUES (1, 'toolong'), (1, 'dup')")];
            $out['get_warnings_insert'] = $w();
            $out['select_cast'] = $a->q($c, "SELECT CAST('12abc' AS SIGNED) AS n, 1/0 AS z");
            $out['get_warnings_select'] = $w();
            $out['show'] = $a->q($c, 'SHOW WARNINGS');
            $out['ps'] = $a->ps($c, 'SELECT CAST(? AS SIGNED)', 's', ['7x']);
            $out['show_after_ps'] = $a->q($c, 'SHOW WARNINGS');
            $c->query("DROP TABLE $t");
            return $out;
        },
        'errors' => function () use ($a, $tbl, $T) {
            $t = $tbl('err');
            $c = $a->connect('write');
            $c->query("DROP TABLE IF EXISTS $t");
            $c->query("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(5) NOT NULL)");
            $c->query("INSERT INTO $t VALUES (1, 'a')");
            $out = [
                'no_table' => error_of(fn() => $a->q($c, 'SELECT * FROM no_such_table_xyz')),
                'syntax' => error_of(fn() => $a->q($c, 'SELEC 1')),
                'dup_key' => error_of(fn() => $a->q($c, "INSERT INTO $t VALUES (1, 'b')")),
                'not_null' => error_of(fn() => $a->q($c, "INSERT INTO $t VALUES (2, NULL)")),
                'too_long' => error_of(fn() => $a->q($c, "INSERT INTO $t VALUES (3, 'toolong')")),
                'unknown_column' => error_of(fn() => $a->q($c, "SELECT nope FROM $T")),
                'signal' => error_of(fn() => $a->q($c, "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom é', MYSQL_ERRNO = 5001")),
                'prepare_error' => error_of(fn() => $a->ps($c, 'SELECT * FROM no_such_table_xyz WHERE id = ?', 'i', [1])),
                'execute_error' => error_of(fn() => $a->ps($c, "INSERT INTO $t VALUES (?, ?)", 'is', [1, 'dup'])),
                'errno_after' => [$c->errno, $c->sqlstate, $c->error],
            ];
            $c->begin_transaction();
            $out['after'] = $a->q($c, "SELECT * FROM $t");
            $c->commit();
            $c->query("DROP TABLE $t");
            return $out;
        },
        'blob_32mb' => function () use ($a, $tbl, $BLOB_MB) {
            $t = $tbl('blob');
            $big = blob_of($BLOB_MB << 20);
            $c = $a->connect('write');
            $c->query("DROP TABLE IF EXISTS $t");
            $c->query("CREATE TABLE $t (id INT PRIMARY KEY, b LONGBLOB)");
            // One 32 MB parameter in a single COM_STMT_EXECUTE ('s'), and
            // the same again through send_long_data ('b').
            $out = ['insert' => $a->ps($c, "INSERT INTO $t VALUES (1, ?)", 's', [$big])];
            $out['insert_long_data'] = $a->ps($c, "INSERT INTO $t VALUES (2, ?)", 'b', [$big]);
            $c->begin_transaction();
            $res = $c->query("SELECT b, LENGTH(b), SHA2(b, 256) = '" . hash('sha256', $big) . "' FROM $t ORDER BY id");
            $rows = $res->fetch_all(MYSQLI_NUM);
            $c->commit();
            $out['read_back'] = array_map(fn($r) => ['len' => strlen($r[0]), 'same_bytes' => $r[0] === $big,
                                                      'server_len' => enc($r[1]), 'server_sha_match' => enc($r[2])], $rows);
            $c->query("DROP TABLE $t");
            return $out;
        },
        'utf8mb4' => function () use ($a, $tbl, $T) {
            $t = $tbl('utf8');
            $s = "é 😀 中文 ñ 🧑\u{200D}💻";
            $c = $a->connect('write');
            $out = ['fixture' => $a->q($c, "SELECT c_varchar, CHAR_LENGTH(c_varchar), HEX(c_varchar) FROM $T WHERE id = 1"),
                    'literal' => $a->q($c, "SELECT '😀' AS emoji, 'ü' AS u")];
            $c->query("DROP TABLE IF EXISTS $t");
            $c->query("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(50)) DEFAULT CHARSET=utf8mb4");
            $a->ps($c, "INSERT INTO $t VALUES (1, ?)", 's', [$s]);
            $c->begin_transaction();
            $out['read_back'] = $a->ps($c, "SELECT s, HEX(s), s = ? FROM $t", 's', [$s]);
            $c->commit();
            $c->query("DROP TABLE $t");
            return $out;
        },
        'latin1' => function () use ($a, $tbl, $T) {
            $t = $tbl('latin1');
            $c = $a->connect('write', ['charset' => 'latin1']);
            $out = ['vars' => $a->q($c, 'SELECT @@character_set_client, @@character_set_results, @@collation_connection'),
                    'fixture' => $a->q($c, "SELECT c_varchar, HEX(c_varchar) FROM $T WHERE id = 1"),
                    'literal' => $a->q($c, "SELECT '" . "\xe9t\xe9" . "' AS s")];
            $c->query("DROP TABLE IF EXISTS $t");
            $c->query("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4");
            $a->ps($c, "INSERT INTO $t VALUES (1, ?)", 's', ["\xe7\xe0 et l\xe0"]);
            // set_charset: switch back mid-session.
            $c->set_charset('utf8mb4');
            $c->begin_transaction();
            $out['read_back_utf8mb4'] = $a->q($c, "SELECT s, HEX(s) FROM $t");
            $c->commit();
            $c->query("DROP TABLE $t");
            return $out;
        },
        'load_local' => function () use ($a, $tbl) {
            $t = $tbl('load');
            $path = sys_get_temp_dir() . "/$t.tsv";
            file_put_contents($path, "1\tfirst\n2\tsécond 😀\n3\t\\N\n4\ttoo many\textra\n");
            try {
                $c = $a->connect('write', ['local_infile' => true]);
                $c->query("DROP TABLE IF EXISTS $t");
                $c->query("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4");
                $out = ['load' => $a->q($c, "LOAD DATA LOCAL INFILE '$path' INTO TABLE $t CHARACTER SET utf8mb4")];
                $out['warnings'] = $a->q($c, 'SHOW WARNINGS');
                $c2 = $a->connect('write', ['local_infile' => true, 'timeout' => 10]);
                $out['missing_file'] = error_of(fn() => $a->q($c2, "LOAD DATA LOCAL INFILE '$path.missing' INTO TABLE $t"));
                $out['next_command'] = error_of(function () use ($a, $c2, &$out) { $out['next'] = $a->q($c2, "SELECT 'next' AS n"); });
                $c->begin_transaction();
                $out['read_back'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
                $c->commit();
                $c->query("DROP TABLE $t");
                return $out;
            } finally {
                @unlink($path);
            }
        },
        'reset_conn' => fn() => throw new NA('mysqli has no API for COM_RESET_CONNECTION (see change_user)'),
        'change_user' => function () use ($a, $T, $DB, $USER, $PASS) {
            $c = $a->connect('write');
            $c->query('SET @v = 7');
            $c->query('CREATE TEMPORARY TABLE tmp_cu (id INT)');
            $c->begin_transaction();
            $c->query('INSERT INTO tmp_cu VALUES (1)');
            $out = ['ok' => $c->change_user($USER, $PASS, $DB)];
            $out['after'] = $a->q($c, 'SELECT @v, CURRENT_USER(), DATABASE()');
            $out['temp_gone'] = error_of(fn() => $a->q($c, 'SELECT * FROM tmp_cu'));
            $out['reuse'] = $a->q($c, "SELECT COUNT(*) FROM $T");
            $out['no_db'] = $c->change_user($USER, $PASS, null);
            $out['after_no_db'] = $a->q($c, 'SELECT DATABASE()');
            $out['wrong_password'] = error_of(fn() => $c->change_user($USER, 'nope', $DB));
            return $out;
        },
        // TLS required (MYSQLI_CLIENT_SSL) and verified against the lab's
        // CA: a read, a write in a transaction, a prepared statement. mysqli
        // does not say whether its socket is TLS: tls_wrong_ca shows it
        // verifies (so it does TLS).
        'tls' => function () use ($a, $tbl, $T) {
            global $TLS_CA;
            $t = $tbl('tls');
            $c = $a->connect('read', ['tls' => $TLS_CA]);
            $out = ['read' => $a->q($c, "SELECT id, c_varchar, c_decimal, c_json FROM $T ORDER BY id"),
                    'read_literal' => $a->q($c, "SELECT 'TLS ✓ é 😀' AS s, CURRENT_USER() AS u"),
                    'read_session_tls' => $a->q($c, SSL_ON)];
            $c = $a->connect('write', ['tls' => $TLS_CA]);
            $c->query("DROP TABLE IF EXISTS $t");
            $c->query("CREATE TABLE $t (id INT PRIMARY KEY, s VARCHAR(40)) DEFAULT CHARSET=utf8mb4");
            $c->begin_transaction();
            $out['insert'] = $a->ps($c, "INSERT INTO $t VALUES (?, ?), (?, ?)", 'isis', [1, 'over TLS 😀', 2, 'deux']);
            $out['in_txn'] = $a->q($c, "SELECT * FROM $t ORDER BY id");
            $out['write_session_tls'] = $a->q($c, SSL_ON);
            $c->commit();
            $out['prepared'] = $a->ps($c, "SELECT s, ? FROM $t WHERE id = ?", 'si', ['é', 1]);
            $c->begin_transaction();
            $out['after_commit'] = $a->q($c, "SELECT COUNT(*) FROM $t");
            $c->commit();
            $c->query("DROP TABLE $t");
            return $out;
        },
        'tls_wrong_ca' => fn() => connect_fails(fn() => $a->connect('read', ['tls' => $GLOBALS['TLS_OTHER_CA']])),
    ];
}

foreach ([new PdoClient(true), new PdoClient(false)] as $a) {
    foreach (pdo_scenarios($a) as $name => $fn) run_scenario($a->name, $name, $fn);
}
$m = new MysqliClient();
foreach (mysqli_scenarios($m) as $name => $fn) run_scenario($m->name, $name, $fn);
