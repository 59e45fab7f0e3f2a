// JDBC (Debian's MariaDB Connector/J) against splitrail or the lab directly.
//
//   javac -d DIR JdbcClients.java
//   java -cp DIR:/usr/share/java/mariadb-java-client.jar JdbcClients --target proxy|direct
//
// Two clients: "jdbc" with the driver's defaults (PreparedStatement is
// emulated client-side: text protocol) and "jdbc-serverps" with
// useServerPrepStmts=true (COM_STMT_PREPARE/EXECUTE, binary rows, long
// data for streams). Prints one JSON line per scenario, the same format as
// common.py.

import java.io.ByteArrayInputStream;
import java.io.File;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.sql.*;
import java.util.*;

public class JdbcClients {
    static final Map<String, String> ENV = System.getenv();
    static final String HOST = ENV.getOrDefault("CLIENTS_HOST", "127.0.0.1");
    static final String USER = ENV.getOrDefault("CLIENTS_USER", "app");
    static final String PASS = ENV.getOrDefault("CLIENTS_PASSWORD", "app");
    static final String DB = ENV.getOrDefault("CLIENTS_DB", "splitrail_test");
    static final String RUN = ENV.getOrDefault("CLIENTS_RUN", "cdev");
    static final int PROXY = Integer.parseInt(ENV.getOrDefault("CLIENTS_PROXY_PORT", "25033"));
    static final int M1 = Integer.parseInt(ENV.getOrDefault("CLIENTS_M1_PORT", "25061"));
    static final int R1 = Integer.parseInt(ENV.getOrDefault("CLIENTS_R1_PORT", "25063"));
    static final int BLOB_MB = Integer.parseInt(ENV.getOrDefault("CLIENTS_BLOB_MB", "32"));
    static final String ONLY = ENV.getOrDefault("CLIENTS_ONLY", "");
    static final String T = RUN + "_types";
    // The lab's CA (it signed the certificate the MariaDB nodes and
    // splitrail serve) and an unrelated one: the tls and tls_wrong_ca
    // scenarios.
    static final String TLS_CA = ENV.getOrDefault("CLIENTS_TLS_CA", "/tmp/splitrail-clients-lab/tls/ca.pem");
    static final String TLS_OTHER_CA = ENV.getOrDefault("CLIENTS_TLS_OTHER_CA", "/tmp/splitrail-clients-lab/tls/other-ca.pem");
    // Whether the server session (through splitrail: its session with the
    // backend) is TLS: Ssl_cipher is set.
    static final String SSL_ON = "SELECT VARIABLE_VALUE <> '' AS tls FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'";
    static String target;

    static class NA extends Exception {
        NA(String m) { super(m); }
    }

    interface Scenario { Object run() throws Exception; }

    // ------------------------------------------------------------ JSON ----

    static String json(Object o) {
        StringBuilder b = new StringBuilder();
        write(b, o);
        return b.toString();
    }

    @SuppressWarnings("unchecked")
    static void write(StringBuilder b, Object o) {
        if (o == null) b.append("null");
        else if (o instanceof Boolean || o instanceof Integer || o instanceof Long) b.append(o);
        else if (o instanceof Map) {
            b.append('{');
            boolean first = true;
            for (Map.Entry<String, Object> e : new TreeMap<>((Map<String, Object>) o).entrySet()) {
                if (!first) b.append(',');
                first = false;
                write(b, e.getKey());
                b.append(':');
                write(b, e.getValue());
            }
            b.append('}');
        } else if (o instanceof List) {
            b.append('[');
            boolean first = true;
            for (Object x : (List<Object>) o) {
                if (!first) b.append(',');
                first = false;
                write(b, x);
            }
            b.append(']');
        } else {
            String s = o.toString();
            b.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"': b.append("\\\""); break;
                    case '\\': b.append("\\\\"); break;
                    case '\n': b.append("\\n"); break;
                    case '\r': b.append("\\r"); break;
                    case '\t': b.append("\\t"); break;
                    default:
                        if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                        else b.append(c);
                }
            }
            b.append('"');
        }
    }

    static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    // ---------------------------------------------------------- values ----

    static String digest(byte[] b) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256").digest(b);
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 8; i++) s.append(String.format("%02x", d[i]));
        return s.toString();
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) s.append(String.format("%02x", x));
        return s.toString();
    }

    // A Java value as [class name, comparable form].
    static List<Object> enc(Object v) throws Exception {
        if (v == null) return Arrays.asList("null", null);
        String t = v.getClass().getSimpleName();
        if (v instanceof byte[]) {
            byte[] b = (byte[]) v;
            return Arrays.asList(t, b.length > 64 ? map("len", b.length, "sha256", digest(b)) : hex(b));
        }
        if (v instanceof Blob) {
            Blob bl = (Blob) v;
            return enc(bl.getBytes(1, (int) bl.length()));
        }
        if (v instanceof BigDecimal) return Arrays.asList(t, ((BigDecimal) v).toPlainString());
        String s = v.toString();
        if (s.length() > 200) return Arrays.asList(t, map("len", s.length(), "sha256", digest(s.getBytes(StandardCharsets.UTF_8))));
        return Arrays.asList(t, s);
    }

    static List<Object> meta(ResultSetMetaData m) throws SQLException {
        List<Object> out = new ArrayList<>();
        for (int i = 1; i <= m.getColumnCount(); i++) {
            out.add(map("label", m.getColumnLabel(i), "name", m.getColumnName(i), "type", m.getColumnType(i),
                    "typeName", m.getColumnTypeName(i), "class", m.getColumnClassName(i),
                    "precision", m.getPrecision(i), "scale", m.getScale(i), "table", m.getTableName(i),
                    "catalog", m.getCatalogName(i), "nullable", m.isNullable(i), "signed", m.isSigned(i),
                    "displaySize", m.getColumnDisplaySize(i), "autoIncrement", m.isAutoIncrement(i)));
        }
        return out;
    }

    // Rows via getObject() plus, per column, the typed getters apps use.
    static Map<String, Object> rows(ResultSet rs) throws Exception {
        ResultSetMetaData m = rs.getMetaData();
        List<Object> rows = new ArrayList<>();
        while (rs.next()) {
            List<Object> row = new ArrayList<>();
            for (int i = 1; i <= m.getColumnCount(); i++) {
                Object v;
                try {
                    v = enc(rs.getObject(i));
                } catch (SQLException e) {
                    v = Arrays.asList("SQLException", e.getMessage());
                }
                Object s;
                try {
                    s = rs.getString(i);
                    if (s != null && ((String) s).length() > 200) s = enc(s).get(1);
                } catch (SQLException e) {
                    s = "SQLException: " + e.getMessage();
                }
                row.add(Arrays.asList(v, s));
            }
            rows.add(row);
        }
        return map("meta", meta(m), "rows", rows);
    }

    static Map<String, Object> warnings(SQLWarning w) {
        List<Object> out = new ArrayList<>();
        for (; w != null; w = w.getNextWarning()) out.add(Arrays.asList(w.getErrorCode(), w.getSQLState(), w.getMessage()));
        return map("warnings", out);
    }

    // Connector/J puts the connection id and the address into messages:
    // both legitimately differ between splitrail and a direct connection.
    static String normalize(String m) {
        if (m == null) return null;
        return m.replaceAll("\\(conn=\\d+\\) ", "(conn=N) ").replaceAll("\\(port=\\d+\\)", "(port=P)")
                // Statement ids are per server (splitrail maps its own).
                .replaceAll("statement handler \\(\\d+\\)", "statement handler (N)");
    }

    static Map<String, Object> err(SQLException e) {
        return map("class", e.getClass().getSimpleName(), "code", e.getErrorCode(), "sqlstate", e.getSQLState(),
                "message", normalize(e.getMessage()));
    }

    interface Action { void run() throws Exception; }

    static Object errorOf(Action a) throws Exception {
        try {
            a.run();
        } catch (SQLException e) {
            return err(e);
        }
        return "no error raised";
    }

    static byte[] blobOf(int n) {
        byte[] unit = new byte[512];
        for (int i = 0; i < 256; i++) {
            unit[i] = (byte) i;
            unit[511 - i] = (byte) i;
        }
        byte[] out = new byte[n];
        for (int i = 0; i < n; i += 512) System.arraycopy(unit, 0, out, i, Math.min(512, n - i));
        return out;
    }

    // ---------------------------------------------------------- client ----

    static class Client {
        final String name;
        final boolean serverPs;
        final List<Connection> open = new ArrayList<>();

        Client(String name, boolean serverPs) {
            this.name = name;
            this.serverPs = serverPs;
        }

        // Direct runs go where splitrail routes the scenario: reads to r1,
        // writes and transactions to m1.
        Connection connect(String route, String password, boolean db, String extra) throws SQLException {
            int port = target.equals("proxy") ? PROXY : route.equals("read") ? R1 : M1;
            String url = "jdbc:mariadb://" + HOST + ":" + port + "/" + (db ? DB : "")
                    + "?connectTimeout=10000&socketTimeout=90000&useServerPrepStmts=" + serverPs
                    + (extra.isEmpty() ? "" : "&" + extra);
            Connection c = DriverManager.getConnection(url, USER, password);
            open.add(c);
            return c;
        }

        Connection connect(String route) throws SQLException { return connect(route, PASS, true, ""); }

        void closeAll() {
            for (Connection c : open) {
                try { c.close(); } catch (Exception e) { /* already broken */ }
            }
            open.clear();
        }

        String tbl(String s) { return RUN + "_" + name.replace('-', '_') + "_" + s; }
    }

    static Object q(Connection c, String sql) throws Exception {
        try (Statement st = c.createStatement()) {
            boolean rs = st.execute(sql);
            Map<String, Object> out = map("updateCount", st.getUpdateCount());
            if (rs) out.putAll(rows(st.getResultSet()));
            out.putAll(warnings(st.getWarnings()));
            return out;
        }
    }

    static void bind(PreparedStatement ps, Object[] params) throws SQLException {
        for (int i = 0; i < params.length; i++) {
            Object v = params[i];
            if (v == null) ps.setNull(i + 1, Types.VARCHAR);
            else if (v instanceof ByteArrayInputStream) ps.setBinaryStream(i + 1, (ByteArrayInputStream) v);
            else ps.setObject(i + 1, v);
        }
    }

    static Object p(Connection c, String sql, Object... params) throws Exception {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            bind(ps, params);
            boolean rs = ps.execute();
            Map<String, Object> out = map("updateCount", ps.getUpdateCount());
            if (rs) out.putAll(rows(ps.getResultSet()));
            out.putAll(warnings(ps.getWarnings()));
            return out;
        }
    }

    static Object sets(Statement st, boolean first) throws Exception {
        List<Object> sets = new ArrayList<>();
        boolean rs = first;
        while (true) {
            if (rs) sets.add(rows(st.getResultSet()));
            else {
                int n = st.getUpdateCount();
                if (n == -1) break;
                sets.add(map("updateCount", n));
            }
            rs = st.getMoreResults();
        }
        return sets;
    }

    static Object[] paramValues(byte[] big, boolean stream) {
        return new Object[] {null, 42, Long.MIN_VALUE, new BigDecimal("18446744073709551615"), 3.5,
            new BigDecimal("-1234567.891"), "plain", "é😀 ünï", new byte[] {0, (byte) 0xff, 0x10, 0},
            stream ? new ByteArrayInputStream(big) : big, Timestamp.valueOf("2024-02-29 23:59:59.123456"),
            java.sql.Date.valueOf("2024-01-02"), "-838:59:59", true};
    }

    static Map<String, Scenario> scenarios(Client a) {
        Map<String, Scenario> s = new LinkedHashMap<>();
        s.put("connect", () -> {
            Connection c = a.connect("read");
            Map<String, Object> out = map("with_db", q(c, "SELECT DATABASE(), CURRENT_USER(), @@character_set_client, @@collation_connection, VERSION()"));
            DatabaseMetaData md = c.getMetaData();
            out.put("product", md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            out.put("catalog", c.getCatalog());
            out.put("valid", c.isValid(5));
            c = a.connect("read", PASS, false, "");
            out.put("without_db", q(c, "SELECT DATABASE(), CURRENT_USER()"));
            out.put("qualified", q(c, "SELECT COUNT(*) FROM " + DB + "." + T));
            c.setCatalog(DB);
            out.put("after_setCatalog", q(c, "SELECT DATABASE()"));
            return out;
        });
        s.put("auth_fail", () -> errorOf(() -> a.connect("read", "wrong-password", true, "")));
        s.put("types_text", () -> q(a.connect("read"), "SELECT * FROM " + T + " ORDER BY id"));
        s.put("types_binary", () -> {
            if (!a.serverPs) throw new NA("Connector/J emulates prepared statements client-side by default (see jdbc-serverps)");
            return p(a.connect("read"), "SELECT * FROM " + T + " WHERE id >= ? ORDER BY id", 0);
        });
        s.put("params", () -> {
            Connection c = a.connect("read");
            byte[] big = blobOf(1 << 20);
            Object[] vals = paramValues(big, false);
            Map<String, Object> out = map("serverPs", a.serverPs);
            List<Object> each = new ArrayList<>();
            for (int i = 0; i < vals.length; i++) {
                Object v = (i == 9) ? new ByteArrayInputStream(big) : vals[i];  // a stream: long data with server PS
                try {
                    each.add(p(c, "SELECT ? AS p", v));
                } catch (SQLException e) {
                    each.add(err(e));
                }
            }
            out.put("each", each);
            String sql = "SELECT ?" + ", ?".repeat(vals.length - 1);
            out.put("all", errorOf(() -> out.put("all_result", p(c, sql, paramValues(big, true)))));
            return out;
        });
        s.put("params_dml", () -> {
            String t = a.tbl("pdml");
            Connection c = a.connect("write");
            q(c, "DROP TABLE IF EXISTS " + t);
            q(c, "CREATE TABLE " + t + " (id INT PRIMARY KEY, n INT, b BIGINT, ub BIGINT UNSIGNED, d DOUBLE, dec_ DECIMAL(10,3), s VARCHAR(20), e VARCHAR(20), vb VARBINARY(8), bl MEDIUMBLOB, dt DATETIME(6), da DATE, ti TIME, bo TINYINT(1)) DEFAULT CHARSET=utf8mb4");
            Object[] vals = paramValues(blobOf(1 << 20), true);
            Object[] ins = new Object[14];
            ins[0] = 1;
            System.arraycopy(vals, 1, ins, 1, 13);
            Map<String, Object> out = map("insert", p(c, "INSERT INTO " + t + " VALUES (?" + ", ?".repeat(13) + ")", ins));
            // Batch inserts (rewritten or sent one by one, as the driver likes).
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " (id, n, s, dt) VALUES (?, ?, ?, ?)")) {
                for (int i = 10; i < 15; i++) {
                    ps.setInt(1, i);
                    ps.setInt(2, i * 10);
                    ps.setString(3, "batch " + i);
                    ps.setTimestamp(4, i % 2 == 0 ? null : Timestamp.valueOf("2024-01-01 00:00:0" + (i - 10) + ".5"));
                    ps.addBatch();
                }
                out.put("batch", Arrays.toString(ps.executeBatch()));
            }
            out.put("update", p(c, "UPDATE " + t + " SET s = ?, ti = ? WHERE id = ?", "updated", "-00:00:00.5", 1));
            c.setAutoCommit(false);
            out.put("read", q(c, "SELECT * FROM " + t + " ORDER BY id"));
            out.put("read_ps", p(c, "SELECT * FROM " + t + " WHERE id > ? ORDER BY id", 0));
            c.commit();
            c.setAutoCommit(true);
            out.put("delete", p(c, "DELETE FROM " + t + " WHERE id >= ?", 10));
            q(c, "DROP TABLE " + t);
            return out;
        });
        // MariaDB's bulk protocol (COM_STMT_BULK_EXECUTE) for a batch, when
        // the server (or splitrail) offers it; the rows read back.
        s.put("bulk_batch", () -> {
            String t = a.tbl("bulk");
            Connection c = a.connect("write", PASS, true, "useBulkStmts=true");
            q(c, "DROP TABLE IF EXISTS " + t);
            q(c, "CREATE TABLE " + t + " (id INT PRIMARY KEY, s VARCHAR(20))");
            Map<String, Object> out = map();
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " (id, s) VALUES (?, ?)")) {
                for (int i = 0; i < 500; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "row " + i);
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                out.put("batch_size", counts.length);
            }
            out.put("duplicate", errorOf(() -> {
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " (id, s) VALUES (?, ?)")) {
                    ps.setInt(1, 1);
                    ps.setString(2, "again");
                    ps.addBatch();
                    ps.setInt(1, 2);
                    ps.setString(2, "again");
                    ps.addBatch();
                    ps.executeBatch();
                }
            }));
            out.put("read_back", q(c, "SELECT COUNT(*), SUM(id), MAX(s) FROM " + t));
            q(c, "DROP TABLE " + t);
            return out;
        });
        s.put("txn", () -> {
            String t = a.tbl("txn");
            Connection c = a.connect("write");
            q(c, "DROP TABLE IF EXISTS " + t);
            q(c, "CREATE TABLE " + t + " (id INT PRIMARY KEY, v VARCHAR(20))");
            Map<String, Object> out = new LinkedHashMap<>();
            c.setAutoCommit(false);
            out.put("ins1", p(c, "INSERT INTO " + t + " VALUES (?, ?)", 1, "committed"));
            out.put("in_txn_1", q(c, "SELECT * FROM " + t + " ORDER BY id"));
            c.commit();
            q(c, "INSERT INTO " + t + " VALUES (2, 'rolled back')");
            out.put("in_txn_2", q(c, "SELECT COUNT(*) FROM " + t));
            c.rollback();
            Savepoint sp;
            q(c, "INSERT INTO " + t + " VALUES (3, 'before savepoint')");
            sp = c.setSavepoint("sp1");
            q(c, "INSERT INTO " + t + " VALUES (4, 'after savepoint')");
            c.rollback(sp);
            c.commit();
            c.setAutoCommit(true);
            // A read-only transaction may legitimately run on a replica: it
            // reads the (long replicated) fixture, not the rows just written.
            c.setReadOnly(true);
            c.setAutoCommit(false);
            out.put("read_only_txn", q(c, "SELECT id, c_varchar FROM " + T + " ORDER BY id"));
            c.commit();
            c.setAutoCommit(true);
            c.setReadOnly(false);
            Connection c2 = a.connect("write");
            c2.setAutoCommit(false);
            out.put("fresh_connection", q(c2, "SELECT * FROM " + t + " ORDER BY id"));
            c2.commit();
            c2.setAutoCommit(true);
            q(c2, "DROP TABLE " + t);
            return out;
        });
        s.put("insert_id", () -> {
            String t = a.tbl("ins");
            Connection c = a.connect("write");
            q(c, "DROP TABLE IF EXISTS " + t);
            q(c, "CREATE TABLE " + t + " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
            Map<String, Object> out = new LinkedHashMap<>();
            try (Statement st = c.createStatement()) {
                st.executeUpdate("INSERT INTO " + t + " (v) VALUES (10)", Statement.RETURN_GENERATED_KEYS);
                out.put("stmt_keys", rows(st.getGeneratedKeys()));
            }
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " (v) VALUES (?)", Statement.RETURN_GENERATED_KEYS)) {
                ps.setInt(1, 20);
                ps.executeUpdate();
                out.put("ps_keys", rows(ps.getGeneratedKeys()));
                for (int i = 0; i < 3; i++) {
                    ps.setInt(1, 30 + i);
                    ps.addBatch();
                }
                out.put("batch", Arrays.toString(ps.executeBatch()));
                out.put("batch_keys", rows(ps.getGeneratedKeys()));
            }
            out.put("last_insert_id", q(c, "SELECT LAST_INSERT_ID()"));
            c.setAutoCommit(false);
            q(c, "INSERT INTO " + t + " (v) VALUES (40)");
            out.put("in_txn", q(c, "SELECT LAST_INSERT_ID(), ROW_COUNT()"));
            c.commit();
            c.setAutoCommit(true);
            q(c, "DROP TABLE " + t);
            return out;
        });
        s.put("multi_stmt", () -> {
            String t = a.tbl("multi");
            Connection c = a.connect("write", PASS, true, "allowMultiQueries=true");
            q(c, "DROP TABLE IF EXISTS " + t);
            Map<String, Object> out = new LinkedHashMap<>();
            try (Statement st = c.createStatement()) {
                boolean rs = st.execute("CREATE TABLE " + t + " (id INT PRIMARY KEY); INSERT INTO " + t + " VALUES (1),(2); SELECT * FROM " + t + " ORDER BY id; SELECT 'x' AS x, NULL AS n; UPDATE " + t + " SET id = id + 10");
                out.put("sets", sets(st, rs));
            }
            out.put("error_batch", errorOf(() -> {
                try (Statement st = c.createStatement()) {
                    out.put("error_batch_sets", sets(st, st.execute("SELECT 1; SELECT * FROM no_such_table_xyz; SELECT 3")));
                }
            }));
            c.setAutoCommit(false);
            out.put("after", q(c, "SELECT COUNT(*) FROM " + t));
            c.commit();
            c.setAutoCommit(true);
            q(c, "DROP TABLE " + t);
            return out;
        });
        s.put("call_2_results", () -> {
            Connection c = a.connect("write");
            Map<String, Object> out = new LinkedHashMap<>();
            try (Statement st = c.createStatement()) {
                out.put("statement", sets(st, st.execute("CALL " + RUN + "_two_results(3)")));
            }
            try (CallableStatement cs = c.prepareCall("{call " + RUN + "_two_results(?)}")) {
                cs.setInt(1, 2);
                out.put("callable", sets(cs, cs.execute()));
            }
            out.put("after", q(c, "SELECT 'still in sync' AS s"));
            return out;
        });
        s.put("warnings", () -> {
            String t = a.tbl("warn");
            Connection c = a.connect("write");
            q(c, "DROP TABLE IF EXISTS " + t);
            q(c, "CREATE TABLE " + t + " (id INT PRIMARY KEY, s VARCHAR(3))");
            Map<String, Object> out = map("insert_ignore", q(c, "INSERT IGNORE INTO " + t + " VALUES (1, 'toolong'), (1, 'dup')"));
            out.put("show_after_insert", q(c, "SHOW WARNINGS"));
            out.put("select_cast", q(c, "SELECT CAST('12abc' AS SIGNED) AS n, 1/0 AS z"));
            out.put("ps", p(c, "SELECT CAST(? AS SIGNED)", "7x"));
            out.put("connection_warnings", warnings(c.getWarnings()));
            q(c, "DROP TABLE " + t);
            return out;
        });
        s.put("errors", () -> {
            String t = a.tbl("err");
            Connection c = a.connect("write");
            q(c, "DROP TABLE IF EXISTS " + t);
            q(c, "CREATE TABLE " + t + " (id INT PRIMARY KEY, s VARCHAR(5) NOT NULL)");
            q(c, "INSERT INTO " + t + " VALUES (1, 'a')");
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("no_table", errorOf(() -> q(c, "SELECT * FROM no_such_table_xyz")));
            out.put("syntax", errorOf(() -> q(c, "SELEC 1")));
            out.put("dup_key", errorOf(() -> q(c, "INSERT INTO " + t + " VALUES (1, 'b')")));
            out.put("not_null", errorOf(() -> q(c, "INSERT INTO " + t + " VALUES (2, NULL)")));
            out.put("too_long", errorOf(() -> q(c, "INSERT INTO " + t + " VALUES (3, 'toolong')")));
            out.put("unknown_column", errorOf(() -> q(c, "SELECT nope FROM " + T)));
            out.put("signal", errorOf(() -> q(c, "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom é', MYSQL_ERRNO = 5001")));
            out.put("prepare_error", errorOf(() -> p(c, "SELECT * FROM no_such_table_xyz WHERE id = ?", 1)));
            out.put("execute_error", errorOf(() -> p(c, "INSERT INTO " + t + " VALUES (?, ?)", 1, "dup")));
            c.setAutoCommit(false);
            out.put("after", q(c, "SELECT * FROM " + t));
            c.commit();
            c.setAutoCommit(true);
            q(c, "DROP TABLE " + t);
            return out;
        });
        s.put("blob_32mb", () -> {
            String t = a.tbl("blob");
            byte[] big = blobOf(BLOB_MB << 20);
            Connection c = a.connect("write");
            q(c, "DROP TABLE IF EXISTS " + t);
            q(c, "CREATE TABLE " + t + " (id INT PRIMARY KEY, b LONGBLOB)");
            Map<String, Object> out = new LinkedHashMap<>();
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " VALUES (?, ?)")) {
                ps.setInt(1, 1);
                ps.setBytes(2, big);
                out.put("insert_bytes", ps.executeUpdate());
                ps.setInt(1, 2);
                ps.setBinaryStream(2, new ByteArrayInputStream(big), big.length);
                out.put("insert_stream", ps.executeUpdate());
            }
            c.setAutoCommit(false);
            List<Object> back = new ArrayList<>();
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT b, LENGTH(b) FROM " + t + " ORDER BY id")) {
                while (rs.next()) {
                    byte[] b = rs.getBytes(1);
                    back.add(map("len", b.length, "same_bytes", Arrays.equals(b, big), "sha", digest(b), "server_len", rs.getLong(2)));
                }
            }
            c.commit();
            c.setAutoCommit(true);
            out.put("read_back", back);
            q(c, "DROP TABLE " + t);
            return out;
        });
        s.put("utf8mb4", () -> {
            String t = a.tbl("utf8");
            String str = "é 😀 中文 ñ \uD83E\uDDD1\u200D\uD83D\uDCBB";
            Connection c = a.connect("write");
            Map<String, Object> out = map("fixture", q(c, "SELECT c_varchar, CHAR_LENGTH(c_varchar), HEX(c_varchar) FROM " + T + " WHERE id = 1"),
                    "literal", q(c, "SELECT '😀' AS emoji, 'ü' AS u"));
            q(c, "DROP TABLE IF EXISTS " + t);
            q(c, "CREATE TABLE " + t + " (id INT PRIMARY KEY, s VARCHAR(50)) DEFAULT CHARSET=utf8mb4");
            p(c, "INSERT INTO " + t + " VALUES (1, ?)", str);
            c.setAutoCommit(false);
            out.put("read_back", p(c, "SELECT s, HEX(s), s = ? FROM " + t, str));
            c.commit();
            c.setAutoCommit(true);
            q(c, "DROP TABLE " + t);
            return out;
        });
        s.put("latin1", () -> {
            throw new NA("Connector/J always uses utf8mb4 for the connection (no latin1 connection charset)");
        });
        s.put("load_local", () -> {
            String t = a.tbl("load");
            File f = new File(System.getProperty("java.io.tmpdir"), t + ".tsv");
            Files.write(f.toPath(), "1\tfirst\n2\tsécond 😀\n3\t\\N\n4\ttoo many\textra\n".getBytes(StandardCharsets.UTF_8));
            try {
                Connection c = a.connect("write", PASS, true, "allowLocalInfile=true");
                q(c, "DROP TABLE IF EXISTS " + t);
                q(c, "CREATE TABLE " + t + " (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4");
                Map<String, Object> out = map("load", q(c, "LOAD DATA LOCAL INFILE '" + f + "' INTO TABLE " + t + " CHARACTER SET utf8mb4"));
                out.put("warnings", q(c, "SHOW WARNINGS"));
                Connection c2 = a.connect("write", PASS, true, "allowLocalInfile=true&socketTimeout=10000");
                out.put("missing_file", errorOf(() -> q(c2, "LOAD DATA LOCAL INFILE '" + f + ".missing' INTO TABLE " + t)));
                out.put("next_command", errorOf(() -> out.put("next", q(c2, "SELECT 'next' AS n"))));
                c.setAutoCommit(false);
                out.put("read_back", q(c, "SELECT * FROM " + t + " ORDER BY id"));
                c.commit();
                c.setAutoCommit(true);
                q(c, "DROP TABLE " + t);
                return out;
            } finally {
                f.delete();
            }
        });
        s.put("reset_conn", () -> {
            // MariaDbConnection.reset(): COM_RESET_CONNECTION (what pools use).
            Connection c = a.connect("write", PASS, true, "useResetConnection=true");
            Map<String, Object> out = new LinkedHashMap<>();
            q(c, "SET @v = 42");
            out.put("var_before", q(c, "SELECT @v"));
            q(c, "SET SESSION sql_mode = 'ANSI_QUOTES'");
            q(c, "CREATE TEMPORARY TABLE tmp_reset (id INT)");
            PreparedStatement ps = c.prepareStatement("SELECT ? + 1 AS n");
            ps.setInt(1, 1);
            try (ResultSet rs = ps.executeQuery()) { out.put("ps_before", rows(rs)); }
            c.setAutoCommit(false);
            q(c, "INSERT INTO tmp_reset VALUES (1)");
            c.unwrap(org.mariadb.jdbc.MariaDbConnection.class).reset();
            out.put("autocommit_after", c.getAutoCommit());
            out.put("var_after", q(c, "SELECT @v, @@sql_mode = @@GLOBAL.sql_mode AS mode_reset"));
            out.put("temp_gone", errorOf(() -> q(c, "SELECT * FROM tmp_reset")));
            out.put("ps_after", errorOf(() -> {
                ps.setInt(1, 2);
                try (ResultSet rs = ps.executeQuery()) { out.put("ps_after_rows", rows(rs)); }
            }));
            out.put("reuse", q(c, "SELECT COUNT(*) FROM " + T));
            out.put("db_kept", q(c, "SELECT DATABASE()"));
            return out;
        });
        s.put("change_user", () -> {
            throw new NA("JDBC has no API for COM_CHANGE_USER");
        });
        // TLS required and verified against the lab's CA (Connector/J 2.7:
        // useSsl forces TLS, serverSslCert is the CA to trust, the host name
        // is checked unless disableSslHostnameVerification): a read, a write
        // in a transaction, a prepared statement. JDBC does not say whether
        // its socket is TLS: tls_wrong_ca shows it verifies (so it does TLS).
        s.put("tls", () -> {
            String t = a.tbl("tls");
            String tls = "useSsl=true&serverSslCert=" + TLS_CA;
            Connection c = a.connect("read", PASS, true, tls);
            Map<String, Object> out = map("read", q(c, "SELECT id, c_varchar, c_decimal, c_json FROM " + T + " ORDER BY id"));
            out.put("read_literal", q(c, "SELECT 'TLS ✓ é 😀' AS s, CURRENT_USER() AS u"));
            out.put("read_session_tls", q(c, SSL_ON));
            c = a.connect("write", PASS, true, tls);
            q(c, "DROP TABLE IF EXISTS " + t);
            q(c, "CREATE TABLE " + t + " (id INT PRIMARY KEY, s VARCHAR(40)) DEFAULT CHARSET=utf8mb4");
            c.setAutoCommit(false);
            out.put("insert", p(c, "INSERT INTO " + t + " VALUES (?, ?), (?, ?)", 1, "over TLS 😀", 2, "deux"));
            out.put("in_txn", q(c, "SELECT * FROM " + t + " ORDER BY id"));
            out.put("write_session_tls", q(c, SSL_ON));
            c.commit();
            c.setAutoCommit(true);
            out.put("prepared", p(c, "SELECT s, ? FROM " + t + " WHERE id = ?", "é", 1));
            c.setAutoCommit(false);
            out.put("after_commit", q(c, "SELECT COUNT(*) FROM " + t));
            c.commit();
            c.setAutoCommit(true);
            q(c, "DROP TABLE " + t);
            return out;
        });
        // Verified against a CA that did not sign the server's certificate:
        // the connect fails (class, code and SQLSTATE compared, not the
        // message, which holds the TLS library's text).
        s.put("tls_wrong_ca", () -> {
            try {
                a.connect("read", PASS, true, "useSsl=true&serverSslCert=" + TLS_OTHER_CA);
            } catch (SQLException e) {
                return map("failed", true, "class", e.getClass().getSimpleName(), "code", e.getErrorCode(),
                        "sqlstate", e.getSQLState());
            }
            return map("failed", false);
        });
        return s;
    }

    static void emit(String client, String scenario, String status, Object result, String reason, double secs) {
        Map<String, Object> line = map("client", client, "scenario", scenario, "target", target, "status", status,
                "result", result, "secs", String.format("%.3f", secs));
        if (reason != null) line.put("reason", reason);
        String j = json(line).replace("\"secs\":\"" + line.get("secs") + "\"", "\"secs\":" + line.get("secs"));
        System.out.println(j);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2 || !args[0].equals("--target") || !(args[1].equals("proxy") || args[1].equals("direct"))) {
            System.err.println("usage: JdbcClients --target proxy|direct");
            System.exit(2);
        }
        target = args[1];
        List<String> only = ONLY.isEmpty() ? List.of() : Arrays.asList(ONLY.split(","));
        for (Client a : List.of(new Client("jdbc", false), new Client("jdbc-serverps", true))) {
            for (Map.Entry<String, Scenario> e : scenarios(a).entrySet()) {
                if (!only.isEmpty() && !only.contains(a.name) && !only.contains(e.getKey())) continue;
                long t0 = System.nanoTime();
                double secs;
                try {
                    Object r = e.getValue().run();
                    secs = (System.nanoTime() - t0) / 1e9;
                    emit(a.name, e.getKey(), "ok", r, null, secs);
                } catch (NA na) {
                    emit(a.name, e.getKey(), "na", null, na.getMessage(), (System.nanoTime() - t0) / 1e9);
                } catch (Throwable x) {
                    Map<String, Object> r = map("exception", x.getClass().getSimpleName(), "message", String.valueOf(x.getMessage()));
                    if (x instanceof SQLException) r.putAll(err((SQLException) x));
                    StringBuilder tb = new StringBuilder();
                    for (StackTraceElement el : x.getStackTrace()) {
                        if (tb.length() > 1200) break;
                        tb.append(el).append('\n');
                    }
                    emit(a.name, e.getKey(), "error", r, tb.toString(), (System.nanoTime() - t0) / 1e9);
                } finally {
                    a.closeAll();
                }
            }
        }
    }
}
