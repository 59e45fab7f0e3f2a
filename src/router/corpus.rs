//! The routing corpus: a table of real-world and adversarial statements,
//! each with the route DESIGN §3 requires for a session in its default
//! state (autocommit on, no transaction, not pinned).
//!
//! Every row states the *contract*, not what the classifier happens to do
//! today: when a row fails, fix the classifier, not the row. The tests
//! collect every mismatch into one message, so one run shows them all.
//!
//! Besides the table: session-state kinds and pins (a second table), and a
//! generated check that a write verb standing bare in a statement never
//! reaches a replica while the same verb inside a string or a comment does
//! not stop a read from going there.

use super::*;

/// The route a row expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Replica,
    Writer,
    /// The backend that ran the previous statement.
    Previous,
    /// The node named by a `/* splitrail:node=NAME */` hint.
    Node(&'static str),
}

use Expect::{Node, Previous, Replica, Writer};

impl Expect {
    fn matches(&self, got: &Route) -> bool {
        match (self, got) {
            (Replica, Route::Replica) | (Writer, Route::Writer) | (Previous, Route::Previous) => {
                true
            }
            (Node(want), Route::Node(name)) => &**name == *want,
            _ => false,
        }
    }
}

fn routed(sql: &str) -> Route {
    route(&classify(sql.as_bytes()), SessionFlags::default())
}

/// Statement → route, for a session in its default state.
const CASES: &[(&str, Expect)] = &[
    // ---- Plain SELECTs of every shape: replica ------------------------
    ("SELECT 1", Replica),
    ("select * from t", Replica),
    ("SeLeCt id FrOm t", Replica),
    ("SELECT id, name FROM users WHERE id = 42", Replica),
    ("SELECT * FROM t WHERE id = ? AND created_at > ?", Replica),
    ("SELECT * FROM dual", Replica),
    ("SELECT u.id, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total > 100", Replica),
    ("SELECT u.id FROM users u LEFT JOIN orders o ON (o.user_id = u.id) WHERE o.id IS NULL", Replica),
    ("SELECT a.x, b.y FROM a INNER JOIN b USING (id) RIGHT OUTER JOIN c ON c.id = b.c_id", Replica),
    ("SELECT * FROM t1 NATURAL JOIN t2 CROSS JOIN t3", Replica),
    ("SELECT * FROM t1 JOIN (t2, t3) ON (t2.a = t1.a AND t3.b = t1.b)", Replica),
    ("SELECT name FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 10)", Replica),
    ("SELECT name FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)", Replica),
    ("SELECT name FROM users WHERE NOT EXISTS (SELECT 1 FROM bans WHERE bans.user_id = users.id)", Replica),
    ("SELECT (SELECT COUNT(*) FROM orders o WHERE o.user_id = u.id) AS n FROM users u", Replica),
    ("SELECT a.* FROM a WHERE a.id = ANY (SELECT b.id FROM b) AND a.x > ALL (SELECT 1)", Replica),
    ("SELECT * FROM t1 WHERE (a, b) IN ((1, 2), (3, 4))", Replica),
    ("SELECT id FROM a UNION SELECT id FROM b", Replica),
    ("SELECT id FROM a UNION ALL SELECT id FROM b ORDER BY id LIMIT 10", Replica),
    ("(SELECT id FROM a WHERE x = 1) UNION (SELECT id FROM b WHERE y = 2) ORDER BY id", Replica),
    ("((SELECT 1))", Replica),
    ("SELECT id FROM a EXCEPT SELECT id FROM b", Replica),
    ("(SELECT id FROM a) INTERSECT (SELECT id FROM b)", Replica),
    ("SELECT dept, COUNT(*) AS n, AVG(salary) FROM emp GROUP BY dept HAVING COUNT(*) > 5 ORDER BY n DESC", Replica),
    ("SELECT dept, SUM(salary) FROM emp GROUP BY dept WITH ROLLUP", Replica),
    ("SELECT id, ROW_NUMBER() OVER (PARTITION BY dept ORDER BY salary DESC) AS rn FROM emp", Replica),
    (
        "SELECT id, SUM(amount) OVER w, LAG(amount, 1) OVER w FROM payments \
         WINDOW w AS (PARTITION BY account ORDER BY ts)",
        Replica,
    ),
    (
        "SELECT RANK() OVER (ORDER BY score DESC), DENSE_RANK() OVER (ORDER BY score DESC), \
         NTILE(4) OVER (ORDER BY score) FROM results",
        Replica,
    ),
    ("SELECT id, AVG(v) OVER (ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM t", Replica),
    ("WITH recent AS (SELECT * FROM orders WHERE created_at > NOW() - INTERVAL 1 DAY) SELECT COUNT(*) FROM recent", Replica),
    ("WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 10) SELECT n FROM seq", Replica),
    ("WITH a AS (SELECT 1 AS x), b (y) AS (SELECT 2) SELECT a.x, b.y FROM a, b", Replica),
    (
        "WITH RECURSIVE tree AS (SELECT id, parent_id FROM cats WHERE id = 1 UNION ALL \
         SELECT c.id, c.parent_id FROM cats c JOIN tree ON c.parent_id = tree.id) SELECT * FROM tree",
        Replica,
    ),
    ("WITH `cte` AS (SELECT 1) (SELECT * FROM `cte`)", Replica),
    ("SELECT d.n FROM (SELECT COUNT(*) AS n FROM t GROUP BY k) AS d WHERE d.n > 1", Replica),
    ("SELECT * FROM (SELECT * FROM (SELECT id FROM t) x) y", Replica),
    ("SELECT * FROM t1, LATERAL (SELECT MAX(v) AS m FROM t2 WHERE t2.k = t1.k) AS l", Replica),
    ("SELECT JSON_EXTRACT(doc, '$.name'), JSON_UNQUOTE(JSON_EXTRACT(doc, '$.a')) FROM docs", Replica),
    (r#"SELECT doc->>'$.name', doc->'$.tags[0]' FROM docs WHERE JSON_CONTAINS(doc, '"x"', '$.tags')"#, Replica),
    ("SELECT JSON_OBJECT('id', id, 'name', name), JSON_ARRAYAGG(tag) FROM t GROUP BY id", Replica),
    (
        "SELECT jt.* FROM docs, JSON_TABLE(docs.doc, '$[*]' COLUMNS (id INT PATH '$.id', \
         name VARCHAR(100) PATH '$.name')) AS jt",
        Replica,
    ),
    (
        "SELECT DATE_FORMAT(created_at, '%Y-%m-%d'), DATEDIFF(NOW(), created_at) FROM orders \
         WHERE created_at >= DATE_SUB(CURDATE(), INTERVAL 7 DAY)",
        Replica,
    ),
    ("SELECT YEAR(d), MONTH(d), DAYOFWEEK(d), UNIX_TIMESTAMP(d), FROM_UNIXTIME(1700000000) FROM t", Replica),
    (
        "SELECT TIMESTAMPDIFF(SECOND, started, finished), STR_TO_DATE('01/02/2024', '%d/%m/%Y'), \
         EXTRACT(YEAR FROM NOW())",
        Replica,
    ),
    ("SELECT CONVERT_TZ(ts, '+00:00', '+05:00'), LAST_DAY(ts), UTC_TIMESTAMP() FROM events", Replica),
    ("SELECT SEC_TO_TIME(SUM(TIME_TO_SEC(duration))) FROM calls", Replica),
    ("SELECT CASE WHEN score >= 90 THEN 'A' WHEN score >= 80 THEN 'B' ELSE 'C' END AS grade FROM results", Replica),
    (
        "SELECT CASE status WHEN 1 THEN 'on' ELSE 'off' END, IF(a > b, a, b), IFNULL(x, 0), \
         COALESCE(a, b, 0), NULLIF(a, 0) FROM t",
        Replica,
    ),
    ("SELECT * FROM t WHERE id IN (1, 2, 3, 5, 8) AND status NOT IN ('deleted', 'spam')", Replica),
    ("SELECT * FROM users WHERE email LIKE '%@example.com' AND name NOT LIKE 'a|_%' ESCAPE '|'", Replica),
    ("SELECT * FROM users WHERE name REGEXP '^[a-z]+$' OR name RLIKE 'x{2,}' OR REGEXP_LIKE(name, 'y')", Replica),
    ("SELECT * FROM t WHERE a BETWEEN 1 AND 10 AND b IS NOT NULL AND c <=> NULL LIMIT 10 OFFSET 20", Replica),
    ("SELECT * FROM orders USE INDEX (idx_user) WHERE user_id = 5", Replica),
    ("SELECT * FROM orders FORCE INDEX (PRIMARY) WHERE id > 100", Replica),
    ("SELECT * FROM orders IGNORE INDEX FOR ORDER BY (idx_created) ORDER BY created_at", Replica),
    ("SELECT * FROM a FORCE KEY (k1) JOIN b USE INDEX FOR JOIN (k2) ON a.id = b.id", Replica),
    ("SELECT * FROM orders PARTITION (p2023, p2024) WHERE id > 1", Replica),
    ("SELECT STRAIGHT_JOIN a.id FROM a STRAIGHT_JOIN b ON a.id = b.a_id", Replica),
    ("SELECT SQL_NO_CACHE id FROM t", Replica),
    ("SELECT HIGH_PRIORITY SQL_BUFFER_RESULT SQL_SMALL_RESULT DISTINCT id FROM t", Replica),
    ("SELECT `id`, `order`, `select` FROM `db`.`table` WHERE `where` = 1", Replica),
    ("SELECT `t`.`delete`, `t`.`update`, `t`.`insert` FROM `t`", Replica),
    ("SELECT COUNT(DISTINCT user_id), GROUP_CONCAT(DISTINCT tag ORDER BY tag SEPARATOR ',') FROM t", Replica),
    (
        "SELECT CAST(price AS DECIMAL(10,2)), CONVERT(name USING utf8mb4), CAST(x AS CHAR(20)), \
         BINARY name FROM products",
        Replica,
    ),
    (
        "SELECT MATCH (title, body) AGAINST ('+mysql -oracle' IN BOOLEAN MODE) AS score FROM articles \
         WHERE MATCH (title, body) AGAINST ('mysql')",
        Replica,
    ),
    (
        "SELECT UPPER(name), LOWER(email), CONCAT_WS(' ', first, last), SUBSTRING_INDEX(email, '@', -1), \
         LPAD(id, 8, '0') FROM users",
        Replica,
    ),
    // INSERT(…) and REPLACE(…) are string functions here, not verbs.
    ("SELECT REPLACE(name, 'a', 'b'), INSERT('abcdef', 2, 3, 'XYZ') FROM t", Replica),
    ("SELECT NOW(), CURRENT_TIMESTAMP, UUID(), RAND(), VERSION(), DATABASE(), USER(), CURRENT_USER()", Replica),
    ("SELECT ST_Distance_Sphere(POINT(lng, lat), POINT(13.4, 52.5)) AS d FROM places ORDER BY d LIMIT 5", Replica),
    ("SELECT * FROM t ORDER BY FIELD(status, 'new', 'open', 'closed'), id DESC", Replica),
    ("SELECT SLEEP(0)", Replica),
    // MariaDB system-versioned tables: FOR is not followed by UPDATE/SHARE.
    ("SELECT * FROM prices FOR SYSTEM_TIME AS OF TIMESTAMP '2024-01-01 00:00:00'", Replica),
    // Reading user variables: they are session state, replayed on the replica.
    ("SELECT @a, @b", Replica),
    ("SELECT * FROM t WHERE id = @id", Replica),
    // Session variables are replayed too; the mysql CLI sends this on connect.
    ("select @@version_comment limit 1", Replica),
    ("SELECT @@session.sql_mode, @@SESSION.time_zone", Replica),
    // Built-ins without side effects that the safe list misses (a read sent
    // to the writer costs capacity, not correctness, but it is still wrong).
    ("SELECT TRUNCATE(price, 2) FROM products", Replica),
    ("SELECT ANY_VALUE(name), dept FROM emp GROUP BY dept", Replica),
    ("SELECT BIN_TO_UUID(id) FROM users WHERE id = UUID_TO_BIN('6ccd780c-baba-1026-9564-5b8c656024db')", Replica),
    // ---- Strings, escapes, unicode, whitespace and comments -------------
    ("SELECT * FROM t WHERE note = 'a;b;c'", Replica),
    ("SELECT * FROM t WHERE note = 'x; DELETE FROM t'", Replica),
    ("SELECT 'DROP TABLE users; --' AS s", Replica),
    ("SELECT '*/ DELETE FROM t /*' AS s", Replica),
    ("SELECT * FROM t WHERE s = '-- not a comment' AND u = '# nor this'", Replica),
    (r"SELECT 'it\'s; DELETE FROM t' AS s", Replica),
    ("SELECT 'it''s; DELETE FROM t' AS s", Replica),
    (r#"SELECT "say \"hi\"; DROP TABLE t" AS s"#, Replica),
    (r#"SELECT "a""b; UPDATE t SET x = 1" AS s"#, Replica),
    (r"SELECT 'C:\\temp\\' AS path, 1 AS x", Replica),
    ("SELECT * FROM t WHERE note = 'FOR UPDATE' AND k = 'INTO @x'", Replica),
    ("SELECT `a;DELETE FROM t` FROM t", Replica),
    ("SELECT 'héllo wörld; 日本語' AS s", Replica),
    ("SELECT * FROM posts WHERE title = '🚀 launch; DELETE 🎉'", Replica),
    ("SELECT név, größe FROM städte", Replica),
    ("SELECT '💥' AS `列`", Replica),
    ("   SELECT 1", Replica),
    ("\n\n\tSELECT\n\t*\n\tFROM\tt\n\tWHERE\tid = 1\n", Replica),
    ("SELECT\r\n  id\r\nFROM\r\n  t", Replica),
    ("select\x0bid\x0cfrom t", Replica),
    ("/* x */ SELECT 1", Replica),
    ("-- x\nSELECT 1", Replica),
    ("# x\nSELECT 1", Replica),
    ("/* multi\nline */\n-- and another\n# and another\nSELECT id FROM t", Replica),
    ("SELECT/**/1", Replica),
    ("SELECT 1 -- DELETE FROM t", Replica),
    ("SELECT 1 # ; DROP TABLE t", Replica),
    ("SELECT 1 /* ; UPDATE t SET a = 1 */", Replica),
    ("SELECT * FROM t -- FOR UPDATE\n", Replica),
    // `--` without a following space is two minus signs: 1 - (-1).
    ("SELECT 1--1", Replica),
    ("SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t", Replica),
    ("SELECT /*+ BKA(t1) NO_BKA(t2) SET_VAR(sort_buffer_size = 16M) */ t1.* FROM t1 JOIN t2 ON t1.id = t2.id", Replica),
    ("SELECT /*!40001 SQL_NO_CACHE */ * FROM t", Replica),
    ("SELECT /*!50001 STRAIGHT_JOIN */ a.id FROM a JOIN b ON a.id = b.id", Replica),
    ("SELECT /*M!100301 SQL_NO_CACHE */ id FROM t", Replica),
    // A trailing `;` followed by nothing but space or comments is one statement.
    ("SELECT 1;", Replica),
    ("SELECT 1;   \n\t", Replica),
    ("SELECT 1; -- done", Replica),
    ("SELECT 1; /* done */", Replica),
    ("SELECT 1 ; # done\n", Replica),
    // ---- Reads that must run on the writer ------------------------------
    ("SELECT * FROM accounts WHERE id = 1 FOR UPDATE", Writer),
    ("SELECT * FROM accounts WHERE id = 1 for update", Writer),
    ("SELECT * FROM accounts WHERE id = 1 FOR\nUPDATE", Writer),
    ("SELECT * FROM accounts WHERE id = 1 FOR SHARE", Writer),
    ("SELECT * FROM accounts WHERE id = 1 LOCK IN SHARE MODE", Writer),
    ("SELECT * FROM jobs WHERE state = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", Writer),
    ("SELECT * FROM jobs WHERE id = 3 FOR UPDATE NOWAIT", Writer),
    ("SELECT * FROM a JOIN b ON a.id = b.a_id FOR SHARE OF a NOWAIT", Writer),
    ("SELECT * FROM jobs WHERE id = 3 FOR UPDATE WAIT 5", Writer),
    ("SELECT * FROM t WHERE id = 1 /*! FOR UPDATE */", Writer),
    ("WITH x AS (SELECT * FROM t WHERE id = 1 FOR UPDATE) SELECT * FROM x", Writer),
    ("SELECT COUNT(*) INTO @n FROM t", Writer),
    ("SELECT id, name INTO @id, @name FROM users LIMIT 1", Writer),
    ("SELECT id FROM users LIMIT 1 INTO @id", Writer),
    ("SELECT * FROM t INTO OUTFILE '/tmp/t.csv' FIELDS TERMINATED BY ','", Writer),
    ("SELECT doc FROM t WHERE id = 1 INTO DUMPFILE '/tmp/doc.bin'", Writer),
    ("SELECT @rank := @rank + 1 AS pos, name FROM players ORDER BY score DESC", Writer),
    ("SELECT @x := 1", Writer),
    ("SELECT LAST_INSERT_ID()", Writer),
    ("select last_insert_id()", Writer),
    ("SELECT * FROM t WHERE id = LAST_INSERT_ID()", Writer),
    ("WITH x AS (SELECT LAST_INSERT_ID() AS id) SELECT * FROM x", Writer),
    ("SELECT ROW_COUNT()", Writer),
    ("SELECT GET_LOCK('cron', 10)", Writer),
    ("SELECT RELEASE_LOCK('cron')", Writer),
    ("SELECT IS_USED_LOCK('cron')", Writer),
    ("SELECT IS_FREE_LOCK('cron')", Writer),
    ("SELECT RELEASE_ALL_LOCKS()", Writer),
    ("SELECT NEXTVAL(order_seq)", Writer),
    ("SELECT NEXT VALUE FOR order_seq", Writer),
    ("SELECT PREVIOUS VALUE FOR order_seq", Writer),
    ("SELECT LASTVAL(order_seq)", Writer),
    ("SELECT SETVAL(order_seq, 1000)", Writer),
    // MariaDB, sql_mode=ORACLE: sequence_name.nextval.
    ("SELECT order_seq.nextval", Writer),
    ("SELECT CONNECTION_ID()", Writer),
    ("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10", Writer),
    ("SELECT LOAD_FILE('/etc/hosts')", Writer),
    ("SELECT MASTER_POS_WAIT('binlog.000001', 4)", Writer),
    // Stored functions may write: anything not known safe goes to the writer.
    ("SELECT my_func(id) FROM t", Writer),
    ("SELECT id FROM t WHERE my_func(id) > 0", Writer),
    ("SELECT app.audit_log(id) FROM t", Writer),
    ("SELECT `app`.audit_log(id) FROM t", Writer),
    // A backticked name before `(` is a stored (or loadable) function call too.
    ("SELECT `my_func`(id) FROM t", Writer),
    ("SELECT `app`.`audit_log`(id) FROM t", Writer),
    ("SELECT @@last_insert_id", Writer),
    ("SELECT @@identity", Writer),
    ("SELECT @@session.last_insert_id", Writer),
    ("SELECT @@global.max_connections", Writer),
    // Keywords are case-insensitive: GLOBAL is global.
    ("SELECT @@GLOBAL.max_connections", Writer),
    // read_only has only global scope: @@read_only is @@global.read_only,
    // and it describes the node that answers (drivers use it to find the primary).
    ("SELECT @@read_only", Writer),
    // @@hostname / @@server_id name the answering node but change nothing;
    // they stay replica-eligible so users can see where a read went (the
    // integration tests rely on it), as with MaxScale and ProxySQL.
    ("SELECT @@hostname, @@server_id", Replica),
    // Same information as SHOW PROCESSLIST / SHOW GLOBAL STATUS, which go to the writer.
    ("SELECT * FROM information_schema.PROCESSLIST WHERE COMMAND <> 'Sleep'", Writer),
    ("SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME = 'Threads_connected'", Writer),
    // Quoted, as GUI tools and ORMs write them: the same tables.
    ("SELECT * FROM `performance_schema`.`threads`", Writer),
    ("SELECT * FROM `PERFORMANCE_SCHEMA`.threads", Writer),
    ("SELECT * FROM information_schema.`PROCESSLIST`", Writer),
    ("SELECT * FROM `information_schema`.`processlist` WHERE `COMMAND` <> 'Sleep'", Writer),
    ("SELECT `VARIABLE_VALUE` FROM `information_schema`.`GLOBAL_STATUS`", Writer),
    // Quoting makes a keyword a plain name; these are ordinary tables and columns.
    ("SELECT `update`, `processlist`.`delete` FROM `processlist`", Replica),
    ("SELECT * FROM `app`.`performance_schema_copy`", Replica),
    // Multi-statement packets run in order on one connection: the writer's.
    ("SELECT 1; SELECT 2", Writer),
    ("SELECT 1;SELECT 2;", Writer),
    ("SELECT 1; DELETE FROM t", Writer),
    ("SELECT 'a;b'; SELECT 'c'", Writer),
    ("SELECT 1 -- c\n; DELETE FROM t", Writer),
    ("SELECT 1 /*!50000 ; DELETE FROM t */", Writer),
    ("SHOW TABLES; DROP TABLE t", Writer),
    ("USE shop; DELETE FROM t", Writer),
    ("SET NAMES utf8mb4; SELECT 1", Writer),
    // A leading executable comment: another server version may run another verb.
    ("/*!50001 SELECT * FROM t */", Writer),
    ("/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */", Writer),
    // ---- Writes ---------------------------------------------------------
    ("INSERT INTO t (a, b) VALUES (1, 'x')", Writer),
    ("insert into t values (1), (2), (3)", Writer),
    ("INSERT INTO archive SELECT * FROM orders WHERE created_at < '2020-01-01'", Writer),
    ("INSERT IGNORE INTO t (id) VALUES (1)", Writer),
    ("INSERT INTO counters (k, n) VALUES ('hits', 1) ON DUPLICATE KEY UPDATE n = n + 1", Writer),
    ("INSERT INTO t (a) VALUES (1) AS new ON DUPLICATE KEY UPDATE a = new.a", Writer),
    ("REPLACE INTO t (id, v) VALUES (1, 'x')", Writer),
    ("UPDATE t SET a = 1 WHERE id = 2", Writer),
    ("UPDATE orders o JOIN users u ON u.id = o.user_id SET o.status = 'vip' WHERE u.tier = 3", Writer),
    ("UPDATE LOW_PRIORITY IGNORE t SET a = a + 1 ORDER BY id LIMIT 10", Writer),
    ("DELETE FROM t WHERE id = 1", Writer),
    ("DELETE t1, t2 FROM t1 INNER JOIN t2 ON t1.id = t2.id WHERE t1.x = 0", Writer),
    ("DELETE FROM t1 USING t1 JOIN t2 ON t1.id = t2.id", Writer),
    ("LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t FIELDS TERMINATED BY ','", Writer),
    ("LOAD XML INFILE 'x.xml' INTO TABLE t", Writer),
    ("CALL refresh_stats(1, @out)", Writer),
    ("CALL p()", Writer),
    ("DO 1", Writer),
    ("DO SLEEP(1)", Writer),
    ("DO GET_LOCK('x', 0)", Writer),
    ("HANDLER t OPEN", Writer),
    ("HANDLER t READ FIRST", Writer),
    ("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20))", Writer),
    ("CREATE TABLE IF NOT EXISTS t2 LIKE t", Writer),
    ("CREATE TEMPORARY TABLE tmp_ids (id INT)", Writer),
    ("CREATE TEMPORARY TABLE tmp AS SELECT id FROM t", Writer),
    ("CREATE INDEX idx_a ON t (a)", Writer),
    ("CREATE OR REPLACE VIEW v AS SELECT 1", Writer),
    ("CREATE DATABASE IF NOT EXISTS shop", Writer),
    ("CREATE USER 'app'@'%' IDENTIFIED BY 'secret'", Writer),
    ("ALTER TABLE t ADD COLUMN c INT NOT NULL DEFAULT 0", Writer),
    ("DROP TABLE IF EXISTS t", Writer),
    ("DROP TEMPORARY TABLE IF EXISTS tmp_ids", Writer),
    ("TRUNCATE TABLE t", Writer),
    ("TRUNCATE t", Writer),
    ("RENAME TABLE t TO t_old, t_new TO t", Writer),
    ("GRANT SELECT, INSERT ON shop.* TO 'app'@'%'", Writer),
    ("REVOKE INSERT ON shop.* FROM 'app'@'%'", Writer),
    ("LOCK TABLES t READ, u WRITE", Writer),
    ("LOCK TABLE t WRITE", Writer),
    ("UNLOCK TABLES", Writer),
    ("XA START 'trx1'", Writer),
    ("XA END 'trx1'", Writer),
    ("XA PREPARE 'trx1'", Writer),
    ("XA COMMIT 'trx1'", Writer),
    ("XA RECOVER", Writer),
    ("BEGIN", Writer),
    ("BEGIN WORK", Writer),
    ("START TRANSACTION", Writer),
    // DESIGN §3.1 lets a READ ONLY transaction run whole on one replica, but
    // that is the session's decision; the statement alone is not a read.
    // A READ ONLY transaction runs whole on one replica (DESIGN §3 rule 1).
    ("START TRANSACTION READ ONLY", Replica),
    ("START TRANSACTION WITH CONSISTENT SNAPSHOT", Writer),
    ("COMMIT", Writer),
    ("ROLLBACK", Writer),
    ("ROLLBACK WORK", Writer),
    ("SAVEPOINT sp1", Writer),
    ("ROLLBACK TO SAVEPOINT sp1", Writer),
    ("RELEASE SAVEPOINT sp1", Writer),
    ("KILL 42", Writer),
    ("KILL QUERY 42", Writer),
    ("FLUSH PRIVILEGES", Writer),
    ("OPTIMIZE TABLE t", Writer),
    ("ANALYZE TABLE t", Writer),
    ("REPAIR TABLE t", Writer),
    ("CHECKSUM TABLE t", Writer),
    ("PREPARE stmt FROM 'SELECT * FROM t WHERE id = ?'", Writer),
    ("EXECUTE stmt USING @id", Writer),
    ("DEALLOCATE PREPARE stmt", Writer),
    (
        "WITH stale AS (SELECT id FROM sessions WHERE expires < NOW()) \
         DELETE FROM sessions WHERE id IN (SELECT id FROM stale)",
        Writer,
    ),
    (
        "WITH totals AS (SELECT user_id, SUM(amount) AS s FROM orders GROUP BY user_id) \
         UPDATE users u JOIN totals t ON t.user_id = u.id SET u.lifetime = t.s",
        Writer,
    ),
    (
        "WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) \
         DELETE FROM t WHERE id IN (SELECT n FROM r)",
        Writer,
    ),
    ("SET GLOBAL max_connections = 500", Writer),
    ("SET @@global.read_only = 1", Writer),
    ("SET @@GLOBAL.read_only = 1", Writer),
    ("SET PERSIST max_connections = 500", Writer),
    ("SET PASSWORD = 'new'", Writer),
    ("SET PASSWORD FOR 'app'@'%' = 'new'", Writer),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", Writer),
    ("SET TRANSACTION READ ONLY", Writer),
    ("SET STATEMENT max_statement_time = 1 FOR SELECT * FROM t", Writer),
    ("SET @a = 1, GLOBAL max_connections = 10", Writer),
    ("SET DEFAULT ROLE ALL TO 'app'@'%'", Writer),
    ("SHUTDOWN", Writer),
    ("RESET MASTER", Writer),
    ("CHANGE MASTER TO MASTER_HOST = 'm2'", Writer),
    ("STOP SLAVE", Writer),
    ("PURGE BINARY LOGS BEFORE NOW()", Writer),
    ("INSTALL PLUGIN audit SONAME 'audit.so'", Writer),
    ("SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no'", Writer),
    // MySQL 8 table value constructors are reads, but not among the plain
    // reads DESIGN §3.3 names: unsure means writer.
    ("VALUES ROW(1, 2), ROW(3, 4)", Writer),
    ("TABLE t", Writer),
    // Garbage, nothing, or only a comment: unsure means writer.
    ("hello world", Writer),
    ("SELEC 1", Writer),
    ("", Writer),
    ("   \n\t", Writer),
    ("/* only a comment */", Writer),
    ("-- only a comment", Writer),
    ("# only\n", Writer),
    (";", Writer),
    ("(1)", Writer),
    ("'SELECT 1'", Writer),
    ("@x", Writer),
    ("\u{1F600}", Writer),
    // ---- SHOW -----------------------------------------------------------
    ("SHOW TABLES", Replica),
    ("show tables", Replica),
    ("SHOW FULL TABLES", Replica),
    ("SHOW TABLES FROM shop LIKE 'wp%'", Replica),
    ("SHOW COLUMNS FROM t", Replica),
    ("SHOW FULL COLUMNS FROM `t` FROM `shop`", Replica),
    ("SHOW CREATE TABLE t", Replica),
    ("SHOW CREATE TABLE `shop`.`t`", Replica),
    ("SHOW CREATE VIEW v", Replica),
    ("SHOW INDEX FROM t", Replica),
    ("SHOW INDEXES IN t", Replica),
    ("SHOW KEYS FROM t", Replica),
    ("SHOW DATABASES", Replica),
    ("SHOW SCHEMAS", Replica),
    ("SHOW TABLE STATUS", Replica),
    ("SHOW TABLE STATUS LIKE 'orders'", Replica),
    ("SHOW TRIGGERS", Replica),
    ("SHOW CHARACTER SET", Replica),
    ("SHOW COLLATION LIKE 'utf8mb4%'", Replica),
    ("SHOW VARIABLES", Writer),
    ("SHOW VARIABLES LIKE 'max_connections'", Writer),
    ("SHOW SESSION VARIABLES", Writer),
    ("SHOW GLOBAL VARIABLES LIKE 'read_only'", Writer),
    ("SHOW STATUS", Writer),
    ("SHOW GLOBAL STATUS LIKE 'Threads%'", Writer),
    ("SHOW PROCESSLIST", Writer),
    ("SHOW FULL PROCESSLIST", Writer),
    ("SHOW MASTER STATUS", Writer),
    ("SHOW SLAVE STATUS", Writer),
    ("SHOW REPLICA STATUS", Writer),
    ("SHOW BINARY LOGS", Writer),
    ("SHOW GRANTS", Writer),
    ("SHOW GRANTS FOR CURRENT_USER()", Writer),
    ("SHOW ENGINE INNODB STATUS", Writer),
    ("SHOW OPEN TABLES", Writer),
    ("SHOW WARNINGS", Previous),
    ("show warnings", Previous),
    ("SHOW WARNINGS LIMIT 5", Previous),
    ("SHOW ERRORS", Previous),
    ("SHOW COUNT(*) WARNINGS", Previous),
    ("SHOW COUNT(*) ERRORS", Previous),
    ("SELECT @@warning_count", Previous),
    ("SELECT @@session.error_count", Previous),
    ("SELECT @@error_count, @@warning_count", Previous),
    // ---- DESCRIBE / EXPLAIN ---------------------------------------------
    ("DESCRIBE t", Replica),
    ("DESC users", Replica),
    ("DESCRIBE shop.orders", Replica),
    ("DESC `order`", Replica),
    ("DESCRIBE t name", Replica),
    ("EXPLAIN t", Replica),
    ("EXPLAIN SELECT * FROM t WHERE id = 1", Replica),
    ("EXPLAIN EXTENDED SELECT 1", Replica),
    ("EXPLAIN FORMAT=JSON SELECT * FROM t", Replica),
    ("EXPLAIN FORMAT = TREE SELECT id FROM t", Replica),
    ("DESCRIBE SELECT 1", Replica),
    ("EXPLAIN (SELECT 1) UNION (SELECT 2)", Replica),
    ("EXPLAIN WITH a AS (SELECT 1) SELECT * FROM a", Replica),
    ("EXPLAIN ANALYZE SELECT * FROM t", Writer),
    ("ANALYZE SELECT * FROM t", Writer),
    ("ANALYZE FORMAT=JSON SELECT 1", Writer),
    ("EXPLAIN UPDATE t SET a = 1", Writer),
    ("EXPLAIN DELETE FROM t", Writer),
    ("EXPLAIN INSERT INTO t VALUES (1)", Writer),
    ("EXPLAIN FORMAT=JSON UPDATE t SET a = 1", Writer),
    ("EXPLAIN FOR CONNECTION 12", Writer),
    ("DESCRIBE t; DROP TABLE t", Writer),
    // ---- Session state: runs on the writer and is recorded --------------
    ("USE shop", Writer),
    ("USE `my db`", Writer),
    ("use shop;", Writer),
    ("SET NAMES utf8mb4", Writer),
    ("SET time_zone = '+05:00'", Writer),
    ("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE'", Writer),
    ("SET @@session.wait_timeout = 600", Writer),
    ("SET autocommit=0", Writer),
    ("SET autocommit = 1", Writer),
    ("SET @a = 1", Writer),
    ("SET @a := 1, @b = 'x'", Writer),
    ("SET CHARACTER SET utf8mb4", Writer),
    ("SET @a = (SELECT MAX(id) FROM t)", Writer),
    ("SET @id = LAST_INSERT_ID()", Writer),
    ("SET @n = NOW()", Writer),
    // ---- Hints ----------------------------------------------------------
    ("/* splitrail:master */ SELECT * FROM t", Writer),
    ("/* splitrail:writer */ SELECT 1", Writer),
    ("/* splitrail:primary */ SELECT 1", Writer),
    ("/* SPLITRAIL:MASTER */ SELECT 1", Writer),
    ("/* splitrail:replica */ SELECT * FROM t", Replica),
    ("/*splitrail:slave*/SELECT 1", Replica),
    ("/* splitrail:node=r2 */ SELECT 1", Node("r2")),
    ("/* splitrail:node=r2 */ SELECT * FROM t WHERE id = 1", Node("r2")),
    ("/* x */ /* splitrail:master */ SELECT 1", Writer),
    // A hint counts in any comment, as MaxScale's do.
    ("SELECT /* splitrail:master */ 1", Writer),
    ("SELECT 1 FROM t -- splitrail:node=r1", Node("r1")),
    ("SELECT '/* splitrail:master */' FROM t", Replica),
    ("/* splitrail:bogus */ SELECT 1", Replica),
    // Hints never turn session state into per-node statements.
    ("/* splitrail:replica */ SET @a = 1", Writer),
    ("/* splitrail:replica */ USE shop", Writer),
    ("/* splitrail:replica */ SHOW WARNINGS", Previous),
    // ---- WordPress ------------------------------------------------------
    (
        "SELECT SQL_CALC_FOUND_ROWS  wp_posts.ID FROM wp_posts  WHERE 1=1  AND ((wp_posts.post_type = 'post' \
         AND (wp_posts.post_status = 'publish'))) ORDER BY wp_posts.post_date DESC LIMIT 0, 10",
        Writer,
    ),
    ("SELECT FOUND_ROWS()", Writer),
    ("SELECT option_name, option_value FROM wp_options WHERE autoload = 'yes'", Replica),
    ("SELECT option_value FROM wp_options WHERE option_name = 'siteurl' LIMIT 1", Replica),
    (
        "SELECT t.*, tt.* FROM wp_terms AS t INNER JOIN wp_term_taxonomy AS tt ON t.term_id = tt.term_id \
         WHERE tt.taxonomy IN ('category') ORDER BY t.name ASC",
        Replica,
    ),
    ("SELECT post_id, meta_key, meta_value FROM wp_postmeta WHERE post_id IN (1,5,9) ORDER BY meta_id ASC", Replica),
    ("SELECT @@SESSION.sql_mode", Replica),
    ("SHOW FULL COLUMNS FROM `wp_options`", Replica),
    (
        "INSERT INTO `wp_options` (`option_name`, `option_value`, `autoload`) VALUES \
         ('_transient_doing_cron', '1700000000.1234560000', 'yes') ON DUPLICATE KEY UPDATE \
         `option_name` = VALUES(`option_name`), `option_value` = VALUES(`option_value`), \
         `autoload` = VALUES(`autoload`)",
        Writer,
    ),
    ("UPDATE `wp_options` SET `option_value` = 'a:0:{}' WHERE `option_name` = 'cron'", Writer),
    (r"DELETE FROM wp_options WHERE option_name LIKE '\_transient\_%'", Writer),
    ("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_520_ci", Writer),
    // ---- Drupal ---------------------------------------------------------
    (
        "SELECT cid, data, created, expire, serialized, tags, checksum FROM cache_bootstrap \
         WHERE cid IN ('system_list', 'module_implements')",
        Replica,
    ),
    ("SELECT name, value FROM key_value WHERE name IN ('system.cron_last') AND collection = 'state'", Replica),
    ("SELECT 1 FROM semaphore WHERE name = 'cron' AND value = '6ef1b2c3'", Replica),
    ("SELECT expire, value FROM semaphore WHERE name = 'cron' FOR UPDATE", Writer),
    ("SELECT session FROM sessions WHERE sid = 'x9Ab' LIMIT 0, 1", Replica),
    (
        "SELECT base_table.vid AS vid, base_table.nid AS nid FROM node base_table \
         INNER JOIN node_field_data node_field_data ON node_field_data.nid = base_table.nid \
         WHERE (node_field_data.status = '1') AND (node_field_data.type IN ('article')) \
         ORDER BY node_field_data.created DESC LIMIT 10 OFFSET 0",
        Replica,
    ),
    (
        "SELECT routing.name AS name, routing.route AS route, routing.fit AS fit FROM router routing \
         WHERE pattern_outline IN ('/node/%', '/node') ORDER BY fit DESC, name ASC",
        Replica,
    ),
    (
        r"SELECT 1 AS expression FROM users_field_data users_field_data WHERE (name LIKE 'admin' ESCAPE '\\') AND (default_langcode = '1') LIMIT 1 OFFSET 0",
        Replica,
    ),
    (
        "INSERT INTO cache_data (cid, expire, created, tags, checksum, data, serialized) VALUES \
         ('route:/node/1', -1, 1700000000.123, 'route', '0', 'a:1:{}', 1) ON DUPLICATE KEY UPDATE \
         cid = VALUES(cid), expire = VALUES(expire), created = VALUES(created), tags = VALUES(tags), \
         checksum = VALUES(checksum), data = VALUES(data), serialized = VALUES(serialized)",
        Writer,
    ),
    ("DELETE FROM cache_render WHERE cid IN ('a', 'b')", Writer),
    // ---- Django ---------------------------------------------------------
    (
        "SELECT `auth_user`.`id`, `auth_user`.`password`, `auth_user`.`last_login`, \
         `auth_user`.`is_superuser`, `auth_user`.`username` FROM `auth_user` \
         WHERE `auth_user`.`username` = 'alice' LIMIT 21",
        Replica,
    ),
    ("SELECT (1) AS `a` FROM `auth_user` WHERE `auth_user`.`email` = 'a@b.c' LIMIT 1", Replica),
    ("SELECT COUNT(*) AS `__count` FROM `blog_post` WHERE `blog_post`.`published` IS NOT NULL", Replica),
    (
        "SELECT `django_session`.`session_key`, `django_session`.`session_data`, \
         `django_session`.`expire_date` FROM `django_session` WHERE \
         (`django_session`.`expire_date` > '2024-05-01 12:00:00.000000' AND \
         `django_session`.`session_key` = 'k2v8') LIMIT 21",
        Replica,
    ),
    ("SELECT @@SQL_AUTO_IS_NULL", Replica),
    ("SELECT `blog_post`.`id` FROM `blog_post` WHERE `blog_post`.`id` = 7 LIMIT 21 FOR UPDATE", Writer),
    ("SAVEPOINT `s140_x1`", Writer),
    ("RELEASE SAVEPOINT `s140_x1`", Writer),
    ("ROLLBACK TO SAVEPOINT `s140_x1`", Writer),
    ("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", Writer),
    (
        "INSERT INTO `django_admin_log` (`action_time`, `user_id`, `content_type_id`, `object_id`, \
         `object_repr`, `action_flag`, `change_message`) VALUES ('2024-05-01 12:00:00', 1, 4, '7', \
         'Post object (7)', 2, '[]')",
        Writer,
    ),
    // ---- Rails ----------------------------------------------------------
    ("SELECT `users`.* FROM `users` WHERE `users`.`id` = 1 LIMIT 1", Replica),
    ("SELECT 1 AS one FROM `users` WHERE `users`.`email` = BINARY 'a@b.c' LIMIT 1", Replica),
    ("SELECT `posts`.* FROM `posts` WHERE `posts`.`user_id` IN (1, 2, 3)", Replica),
    ("SHOW FULL FIELDS FROM `users`", Replica),
    (
        "SELECT column_name FROM information_schema.key_column_usage WHERE constraint_name = 'PRIMARY' \
         AND table_schema = database() AND table_name = 'users' ORDER BY ordinal_position",
        Replica,
    ),
    (
        "SELECT `schema_migrations`.`version` FROM `schema_migrations` \
         ORDER BY `schema_migrations`.`version` ASC",
        Replica,
    ),
    ("SELECT GET_LOCK('3785290519713401245', 0)", Writer),
    (
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci,  @@SESSION.sql_mode = \
         CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO'),  \
         @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483",
        Writer,
    ),
    (
        "INSERT INTO `users` (`email`, `created_at`, `updated_at`) VALUES ('a@b.c', \
         '2024-05-01 12:00:00.123456', '2024-05-01 12:00:00.123456')",
        Writer,
    ),
    // ---- Laravel --------------------------------------------------------
    ("select * from `users` where `email` = ? limit 1", Replica),
    ("select count(*) as aggregate from `posts` where `posts`.`deleted_at` is null", Replica),
    ("select exists(select * from `users` where `email` = ?) as `exists`", Replica),
    (
        "insert into `jobs` (`queue`, `attempts`, `reserved_at`, `available_at`, `created_at`, `payload`) \
         values (?, ?, ?, ?, ?, ?)",
        Writer,
    ),
    ("update `jobs` set `reserved_at` = ?, `attempts` = ? where `id` = ?", Writer),
    (
        "select * from `jobs` where `queue` = ? and ((`reserved_at` is null and `available_at` <= ?) \
         or (`reserved_at` <= ?)) order by `id` asc limit 1 for update skip locked",
        Writer,
    ),
    ("delete from `sessions` where `last_activity` <= ?", Writer),
    ("set names 'utf8mb4' collate 'utf8mb4_unicode_ci'", Writer),
    ("set session sql_mode='NO_ENGINE_SUBSTITUTION'", Writer),
    // ---- Hibernate / JDBC -----------------------------------------------
    ("select this_.id as id1_0_0_, this_.email as email2_0_0_ from users this_ where this_.id=?", Replica),
    (
        "/* load com.example.User */ select user0_.id as id1_0_0_, user0_.email as email2_0_0_ \
         from users user0_ where user0_.id=?",
        Replica,
    ),
    (
        "/* mysql-connector-java-8.0.33 (Revision: 7d6b0800528b6b25c68b52dc10d6c1c8429c100c) */\
         SELECT  @@session.auto_increment_increment AS auto_increment_increment, \
         @@character_set_client AS character_set_client, @@character_set_connection AS \
         character_set_connection, @@character_set_results AS character_set_results, \
         @@character_set_server AS character_set_server, @@collation_server AS collation_server, \
         @@collation_connection AS collation_connection, @@init_connect AS init_connect, \
         @@interactive_timeout AS interactive_timeout, @@license AS license, \
         @@lower_case_table_names AS lower_case_table_names, @@max_allowed_packet AS \
         max_allowed_packet, @@net_write_timeout AS net_write_timeout, @@performance_schema AS \
         performance_schema, @@sql_mode AS sql_mode, @@system_time_zone AS system_time_zone, \
         @@time_zone AS time_zone, @@transaction_isolation AS transaction_isolation, \
         @@wait_timeout AS wait_timeout",
        Replica,
    ),
    ("SELECT @@session.transaction_read_only", Replica),
    ("SET SESSION TRANSACTION READ WRITE", Writer),
    ("set session transaction read only", Writer),
    ("SET character_set_results = NULL", Writer),
    ("select next_val as id_val from hibernate_sequence for update", Writer),
    ("update hibernate_sequence set next_val= ? where next_val=?", Writer),
    ("call next value for hibernate_sequence", Writer),
    ("select nextval(users_seq)", Writer),
    ("insert into users (email, id) values (?, ?)", Writer),
    // ---- PHP PDO / mysqli connect time ----------------------------------
    ("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'", Writer),
    ("SELECT DATABASE()", Replica),
    ("SELECT VERSION()", Replica),
    // ---- mysqldump ------------------------------------------------------
    ("/*!40101 SET NAMES utf8 */", Writer),
    ("/*!40103 SET TIME_ZONE='+00:00' */", Writer),
    ("/*!40100 SET @@SQL_MODE='' */", Writer),
    ("SELECT /*!40001 SQL_NO_CACHE */ * FROM `t`", Replica),
    ("SHOW CREATE TABLE `t`", Replica),
    ("show table status like 't'", Replica),
    ("SHOW TABLES LIKE 't'", Replica),
    ("show fields from `t`", Replica),
    ("SET SQL_QUOTE_SHOW_CREATE=1", Writer),
    ("SET SESSION character_set_results = 'binary'", Writer),
    (r"SHOW VARIABLES LIKE 'gtid\_mode'", Writer),
    (
        "SELECT LOGFILE_GROUP_NAME, FILE_NAME, TOTAL_EXTENTS, INITIAL_SIZE, ENGINE, EXTRA FROM \
         INFORMATION_SCHEMA.FILES WHERE FILE_TYPE = 'UNDO LOG' AND FILE_NAME IS NOT NULL AND \
         LOGFILE_GROUP_NAME IS NOT NULL GROUP BY LOGFILE_GROUP_NAME, FILE_NAME, ENGINE, \
         TOTAL_EXTENTS, INITIAL_SIZE ORDER BY LOGFILE_GROUP_NAME",
        Replica,
    ),
    // mysqldump --set-gtid-purged reads the writer's executed set, upper case.
    ("SELECT @@GLOBAL.GTID_EXECUTED", Writer),
    ("FLUSH /*!40101 LOCAL */ TABLES", Writer),
    ("FLUSH TABLES WITH READ LOCK", Writer),
    ("START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */", Writer),
    // ---- sysbench oltp_read_write ---------------------------------------
    ("SELECT c FROM sbtest1 WHERE id=5", Replica),
    ("SELECT c FROM sbtest1 WHERE id BETWEEN 1 AND 100", Replica),
    ("SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 1 AND 100", Replica),
    ("SELECT c FROM sbtest1 WHERE id BETWEEN 1 AND 100 ORDER BY c", Replica),
    ("SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 1 AND 100 ORDER BY c", Replica),
    ("UPDATE sbtest1 SET k=k+1 WHERE id=5", Writer),
    ("UPDATE sbtest1 SET c='19-92-72' WHERE id=5", Writer),
    ("DELETE FROM sbtest1 WHERE id=5", Writer),
    (
        "INSERT INTO sbtest1 (id, k, c, pad) VALUES (5, 4993, \
         '83868641912-28773972837-60736120486-75162659906-27563526494-20381887404-41576422241', \
         '67847967377-48000963322-62604785301-91415491898-96926520291')",
        Writer,
    ),
];

const READ: StatementKind = StatementKind::Read;
const WRITE: StatementKind = StatementKind::Write;
const USE: StatementKind = StatementKind::Use;
const PREVIOUS: StatementKind = StatementKind::PreviousBackend;
const SET_REPLAYED: StatementKind = StatementKind::SessionSet { replayable: true };
const SET_PINNED: StatementKind = StatementKind::SessionSet { replayable: false };
const PINS: bool = true;
const NO_PIN: bool = false;

/// Statement → (kind, pins_writer), where the session bookkeeping depends
/// on more than the route.
const KINDS: &[(&str, StatementKind, bool)] = &[
    ("USE shop", USE, NO_PIN),
    ("USE `my db`", USE, NO_PIN),
    ("use shop;", USE, NO_PIN),
    // Session state changed inside a multi-statement packet or a leading
    // executable comment is not recorded, so only the writer has it: pin.
    ("USE shop; DELETE FROM t", WRITE, PINS),
    ("SET @a = 1; SELECT 1", WRITE, PINS),
    ("SET @a = 1; DELETE FROM t", WRITE, PINS),
    ("/*!40101 SET NAMES utf8 */", WRITE, PINS),
    ("/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */", WRITE, PINS),
    ("SELECT 1; SET @a = 1", WRITE, PINS),
    ("UPDATE t SET a = 1; CREATE TEMPORARY TABLE tmp (id INT)", WRITE, PINS),
    ("SELECT 1; LOCK TABLES t READ", WRITE, PINS),
    ("SELECT 1; SELECT GET_LOCK('x', 1)", WRITE, PINS),
    ("INSERT INTO t VALUES (1); SELECT GET_LOCK('x', 1)", WRITE, PINS),
    // Same text, same result on any backend: recorded and replayed.
    ("SET NAMES utf8mb4", SET_REPLAYED, NO_PIN),
    ("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'", SET_REPLAYED, NO_PIN),
    ("set names 'utf8mb4' collate 'utf8mb4_unicode_ci'", SET_REPLAYED, NO_PIN),
    ("SET time_zone = '+05:00'", SET_REPLAYED, NO_PIN),
    ("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE'", SET_REPLAYED, NO_PIN),
    ("set session sql_mode='NO_ENGINE_SUBSTITUTION'", SET_REPLAYED, NO_PIN),
    ("SET @@session.wait_timeout = 600", SET_REPLAYED, NO_PIN),
    ("SET @@SESSION.sql_mode = 'TRADITIONAL'", SET_REPLAYED, NO_PIN),
    ("SET LOCAL max_execution_time = 1000", SET_REPLAYED, NO_PIN),
    ("SET autocommit=0", SET_REPLAYED, NO_PIN),
    ("SET autocommit = 1", SET_REPLAYED, NO_PIN),
    ("SET @a = 1", SET_REPLAYED, NO_PIN),
    ("SET @a := 1, @b = 'x'", SET_REPLAYED, NO_PIN),
    ("SET @note = 'has (parens); and DELETE'", SET_REPLAYED, NO_PIN),
    ("SET CHARACTER SET utf8mb4", SET_REPLAYED, NO_PIN),
    ("SET character_set_results = NULL", SET_REPLAYED, NO_PIN),
    ("SET SQL_QUOTE_SHOW_CREATE=1", SET_REPLAYED, NO_PIN),
    ("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", SET_REPLAYED, NO_PIN),
    ("SET SESSION TRANSACTION READ WRITE", SET_REPLAYED, NO_PIN),
    // Data or node-dependent values: run once on the writer, and stay there.
    ("SET @a = (SELECT MAX(id) FROM t)", SET_PINNED, PINS),
    ("SET @id = LAST_INSERT_ID()", SET_PINNED, PINS),
    ("SET @n = NOW()", SET_PINNED, PINS),
    ("SET @u = my_func(1)", SET_PINNED, PINS),
    // No parenthesis, but the value is the writer connection's own state.
    ("SET @x = @@last_insert_id", SET_PINNED, PINS),
    // No parenthesis, but a lazy replay later would record another time.
    ("SET @t = CURRENT_TIMESTAMP", SET_PINNED, PINS),
    // Reading a global into session state is not SET GLOBAL: the value is
    // the writer's, so it cannot be replayed elsewhere.
    ("SET @max = @@global.max_connections", SET_PINNED, PINS),
    ("SET sql_mode = @@GLOBAL.sql_mode", SET_PINNED, PINS),
    // Not session state at all.
    ("SET GLOBAL max_connections = 500", WRITE, NO_PIN),
    ("SET @@global.read_only = 1", WRITE, NO_PIN),
    // The next transaction's characteristics: kept on the writer connection
    // until the next statement (Pin::NextStatement), never replayed.
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", WRITE, PINS),
    ("SET insert_id = 100", WRITE, PINS),
    ("SET PASSWORD = 'x'", WRITE, NO_PIN),
    ("SET STATEMENT max_statement_time = 1 FOR SELECT 1", WRITE, NO_PIN),
    // State only the writer connection has (DESIGN §3.2).
    ("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10", WRITE, PINS),
    (
        "SELECT SQL_CALC_FOUND_ROWS  wp_posts.ID FROM wp_posts  WHERE 1=1  AND ((wp_posts.post_type = 'post' \
         AND (wp_posts.post_status = 'publish'))) ORDER BY wp_posts.post_date DESC LIMIT 0, 10",
        WRITE,
        PINS,
    ),
    ("SELECT GET_LOCK('cron', 10)", WRITE, PINS),
    ("DO GET_LOCK('cron', 10)", WRITE, PINS),
    ("SELECT COUNT(*) INTO @n FROM t", WRITE, PINS),
    ("SELECT @rank := @rank + 1 FROM t", WRITE, PINS),
    ("UPDATE t SET a = (@v := a + 1)", WRITE, PINS),
    // An OUT parameter assigns a user variable on the writer connection.
    ("CALL refresh_stats(1, @out)", WRITE, PINS),
    ("LOCK TABLES t READ", WRITE, PINS),
    ("LOCK TABLE t WRITE", WRITE, PINS),
    // A global read lock held by this session is as much a lock as LOCK TABLES.
    ("FLUSH TABLES WITH READ LOCK", WRITE, PINS),
    ("CREATE TEMPORARY TABLE tmp (id INT)", WRITE, PINS),
    ("CREATE OR REPLACE TEMPORARY TABLE tmp (id INT)", WRITE, PINS),
    ("PREPARE s FROM 'SELECT 1'", WRITE, PINS),
    // Writer-only, but nothing stays behind.
    ("SELECT LAST_INSERT_ID()", WRITE, NO_PIN),
    ("SELECT FOUND_ROWS()", WRITE, NO_PIN),
    ("SELECT RELEASE_LOCK('cron')", WRITE, NO_PIN),
    ("SELECT * FROM t WHERE id = 1 FOR UPDATE", WRITE, NO_PIN),
    ("CREATE TABLE t (id INT)", WRITE, NO_PIN),
    ("DROP TEMPORARY TABLE tmp", WRITE, NO_PIN),
    ("UNLOCK TABLES", WRITE, NO_PIN),
    ("DEALLOCATE PREPARE s", WRITE, NO_PIN),
    ("UPDATE t SET a = 1", WRITE, NO_PIN),
    ("SELECT 1", READ, NO_PIN),
    ("SHOW TABLES", READ, NO_PIN),
    ("SHOW WARNINGS", PREVIOUS, NO_PIN),
    ("SELECT @@warning_count", PREVIOUS, NO_PIN),
];

#[test]
fn corpus_routes_as_designed() {
    assert!(
        CASES.len() >= 170,
        "the corpus shrank to {} statements",
        CASES.len()
    );
    let mut failures = Vec::new();
    for (i, (sql, want)) in CASES.iter().enumerate() {
        if let Some(j) = CASES[..i].iter().position(|(earlier, _)| earlier == sql) {
            failures.push(format!("  {sql:?}\n      duplicate of row {j}"));
            continue;
        }
        let c = classify(sql.as_bytes());
        let got = route(&c, SessionFlags::default());
        if !want.matches(&got) {
            failures.push(format!(
                "  {sql:?}\n      expected {want:?}, got {got:?} ({c:?})"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus statements misrouted:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn session_state_kinds_and_pins() {
    let mut failures = Vec::new();
    for &(sql, kind, pins) in KINDS {
        let c = classify(sql.as_bytes());
        if c.kind != kind || c.pins_writer != pins {
            failures.push(format!(
                "  {sql:?}\n      expected {kind:?} pins_writer={pins}, got {:?} pins_writer={}",
                c.kind, c.pins_writer
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} statements classified wrongly:\n{}",
        failures.len(),
        KINDS.len(),
        failures.join("\n")
    );
}

#[test]
fn use_names_the_database() {
    assert_eq!(use_database(b"USE shop").as_deref(), Some("shop"));
    assert_eq!(use_database(b"use shop;").as_deref(), Some("shop"));
    assert_eq!(use_database(b"USE `my db`").as_deref(), Some("my db"));
    assert_eq!(use_database(b"USE `we``ird`").as_deref(), Some("we`ird"));
    assert_eq!(use_database(b"SELECT 1").as_deref(), None);
}

// ---- Generated: bare write verbs never reach a replica -------------------

/// Verbs that start a statement which writes, or changes server or session
/// state. After a `;`, after the CTEs of a WITH, or in a leading executable
/// comment, each of them must keep the statement off the replicas.
#[rustfmt::skip]
const STATEMENT_VERBS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME",
    "GRANT", "REVOKE", "CALL", "LOAD", "HANDLER", "LOCK", "UNLOCK", "OPTIMIZE", "REPAIR",
    "ANALYZE", "FLUSH", "PURGE", "KILL", "INSTALL", "UNINSTALL", "SHUTDOWN", "SAVEPOINT",
    "RELEASE", "COMMIT", "ROLLBACK", "SIGNAL", "RESIGNAL", "DO", "SET", "XA", "BEGIN", "START",
    "PREPARE", "EXECUTE", "DEALLOCATE", "RESET", "CHANGE", "STOP", "IMPORT", "CLONE", "RESTART",
    "BINLOG", "CACHE", "USE",
];

/// DML and DDL verbs the classifier catches wherever they stand outside
/// quotes and comments, even in the middle of a SELECT.
#[rustfmt::skip]
pub(super) const INLINE_VERBS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME",
    "GRANT", "REVOKE", "CALL", "LOAD", "HANDLER", "UNLOCK", "OPTIMIZE", "REPAIR", "FLUSH",
    "PURGE", "KILL", "INSTALL", "UNINSTALL", "SHUTDOWN", "SAVEPOINT", "COMMIT", "ROLLBACK",
    "SIGNAL", "RESIGNAL",
];

// In the templates `{verb}` is the verb and each `~` becomes a separator
// drawn from SEPARATORS. A `~` never stands inside a string or a comment.

/// The verb starts a second statement, or the main statement of a WITH.
const AT_STATEMENT_START: &[&str] = &[
    "SELECT~1;~{verb}~x",
    "~SELECT~*~FROM~t~WHERE~a~=~'x;y';~{verb}~x",
    "SELECT~1~/* ; */;~{verb}~x",
    "SELECT~1~-- ;\n;~{verb}~x",
    "SELECT~1;\n{verb}~x;",
    "(SELECT~1)~UNION~(SELECT~2);~{verb}~x",
    "WITH~a~AS~(SELECT~1)~{verb}~t~SET~x~=~1",
    "WITH~RECURSIVE~a~(n)~AS~(SELECT~1~UNION~ALL~SELECT~n~+~1~FROM~a~WHERE~n~<~3)~{verb}~t",
    "WITH~a~AS~(SELECT~1),~b~AS~(SELECT~2)~{verb}~x",
    "WITH~a~AS~(SELECT~1)~({verb}~x)",
    "/*!50000 {verb} */~x",
    "/*!50000 SELECT 1 */;~{verb}~x",
    "SELECT~1~/*!50000 ; {verb} x */",
    "SELECT~1~/*M!100100 ; {verb} x */",
    "EXPLAIN~SELECT~1;~{verb}~x",
    "SHOW~TABLES;~{verb}~x",
    "DESCRIBE~t;~{verb}~x",
    "SHOW~WARNINGS;~{verb}~x",
    "SELECT~@@warning_count;~{verb}~x",
    "USE~db;~{verb}~x",
    "SET~@a~=~1;~{verb}~x",
];

/// The verb stands inside a read.
const INLINE: &[&str] = &[
    "SELECT~*~FROM~t~WHERE~a~=~1~{verb}",
    "SELECT~*~FROM~t~WHERE~a~=~1~{verb}~x",
    "SELECT~1~FROM~dual~{verb}~t~SET~a~=~1",
    "(SELECT~1)~{verb}~x",
    "SELECT~*~FROM~(SELECT~1)~d~{verb}~x",
    "SELECT~'a'~{verb}~x",
    "SELECT~`a`~{verb}~x",
    "SELECT~/* c */~{verb}~x",
    "SELECT~1~-- c\n{verb}~x",
    "SELECT~1~/*!50000 {verb} x */",
    "WITH~a~AS~(SELECT~1~{verb}~x)~SELECT~*~FROM~a",
    "WITH~a~AS~(SELECT~1)~SELECT~*~FROM~a~{verb}~x",
    "EXPLAIN~SELECT~1~{verb}~x",
];

/// The verb is hidden in a string, an identifier or a comment: still a read.
const HIDDEN: &[&str] = &[
    "SELECT~*~FROM~t~WHERE~note~=~'{verb} x'",
    "SELECT~*~FROM~t~WHERE~note~=~'x; {verb} x'",
    "SELECT~\"{verb}; x\"~AS~s",
    "SELECT~'it''s; {verb} x'",
    "SELECT~'it\\'s; {verb} x'",
    "SELECT~`{verb}`~FROM~t",
    "SELECT~t.`{verb}`~FROM~t",
    "SELECT~`{verb};x`~FROM~t",
    "SELECT~1~/* {verb} x */",
    "SELECT~1~/* ; {verb} x */",
    "SELECT~1~-- {verb} x",
    "SELECT~1~-- ; {verb} x\n",
    "SELECT~1~# {verb} x",
    "SELECT~1;~-- {verb} x",
    "SELECT~1;~/* {verb} x */",
    "SELECT~1;~# {verb} x\n",
    "/* {verb} x */~SELECT~1",
    "-- {verb} x\nSELECT~1",
    "# {verb}\nSELECT~1",
    "SELECT~/*+ {verb} */~1",
    "SELECT~@'{verb}'",
    "SELECT~JSON_EXTRACT(doc,~'$.{verb}')~FROM~t",
    "WITH~a~AS~(SELECT~'{verb}'~AS~v)~SELECT~v~FROM~a",
    "(SELECT~'{verb}')~UNION~(SELECT~\"{verb}\")",
    "SELECT~*~FROM~t~WHERE~a~=~1~/* {verb} */~AND~b~=~'{verb}'",
    "EXPLAIN~SELECT~'{verb}'",
    "SHOW~TABLES~LIKE~'{verb}%'",
];

/// What may stand between two tokens.
#[rustfmt::skip]
const SEPARATORS: &[&str] = &[
    " ", " ", " ", "  ", "\t", "\n", "\r\n", " \t\n ", "/**/", " /* note */ ", "\n-- note\n",
    " # note\n", "/* ; */",
];

/// Random draws per (template, verb spelling).
const DRAWS: usize = 2;

/// A tiny deterministic generator (xorshift64), so runs are reproducible.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

fn fill(template: &str, verb: &str, rng: &mut XorShift) -> String {
    let text = template.replace("{verb}", verb);
    let mut out = String::with_capacity(text.len() + 32);
    for ch in text.chars() {
        if ch == '~' {
            out.push_str(rng.pick(SEPARATORS));
        } else {
            out.push(ch);
        }
    }
    out
}

/// UPPER, lower and MiXeD spellings of a keyword.
pub(super) fn spellings(verb: &str) -> [String; 3] {
    let mixed: String = verb
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    [verb.to_ascii_uppercase(), verb.to_ascii_lowercase(), mixed]
}

/// Routes every (verb, template) combination and returns the statements
/// where `bad(route)` holds, and how many statements were checked.
fn sweep(
    groups: &[(&[&str], &[&str])],
    seed: u64,
    bad: impl Fn(&Route) -> bool,
) -> (Vec<String>, usize) {
    let mut rng = XorShift(seed);
    let mut failures = Vec::new();
    let mut checked = 0;
    for (verbs, templates) in groups {
        for verb in verbs.iter() {
            for spelled in spellings(verb) {
                for template in templates.iter() {
                    for _ in 0..DRAWS {
                        let sql = fill(template, &spelled, &mut rng);
                        checked += 1;
                        let got = routed(&sql);
                        if bad(&got) {
                            failures.push(format!("  {sql:?} -> {got:?}"));
                        }
                    }
                }
            }
        }
    }
    (failures, checked)
}

fn report(failures: &[String], checked: usize, what: &str) {
    const SHOWN: usize = 60;
    if failures.is_empty() {
        return;
    }
    let mut msg = format!("{} of {checked} {what}:\n", failures.len());
    for f in failures.iter().take(SHOWN) {
        msg.push_str(f);
        msg.push('\n');
    }
    if failures.len() > SHOWN {
        msg.push_str(&format!("  ... and {} more\n", failures.len() - SHOWN));
    }
    panic!("{msg}");
}

#[test]
fn no_write_verb_reaches_a_replica() {
    let groups: [(&[&str], &[&str]); 2] = [
        (STATEMENT_VERBS, AT_STATEMENT_START),
        (INLINE_VERBS, INLINE),
    ];
    let (failures, checked) = sweep(&groups, 0x2545_F491_4F6C_DD1D, |r| *r == Route::Replica);
    assert!(checked > 5000, "only {checked} statements generated");
    report(
        &failures,
        checked,
        "statements with a bare write verb were routed to a replica",
    );
}

#[test]
fn write_verbs_in_strings_and_comments_stay_on_the_replica() {
    let groups: [(&[&str], &[&str]); 1] = [(STATEMENT_VERBS, HIDDEN)];
    let (failures, checked) = sweep(&groups, 0x9E37_79B9_7F4A_7C15, |r| *r != Route::Replica);
    assert!(checked > 5000, "only {checked} statements generated");
    report(
        &failures,
        checked,
        "reads with a quoted or commented-out verb left the replicas",
    );
}
