#!/usr/bin/env node
// Node client libraries against splitrail or the lab directly.
//
//   node node_clients.js --target proxy|direct
//
// Clients: mysql2 (text protocol with query(), binary protocol with
// execute()) and mysql (mysqljs, text protocol only). Both share one
// callback API, so the scenarios below are the same code for both; `ps`
// says whether a client has server-side prepared statements. Prints one
// JSON line per scenario, the same format as common.py.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const targetArg = process.argv.indexOf('--target');
const TARGET = targetArg > 0 ? process.argv[targetArg + 1] : '';
if (TARGET !== 'proxy' && TARGET !== 'direct') {
  console.error('usage: node_clients.js --target proxy|direct');
  process.exit(2);
}
const env = process.env;
const HOST = env.CLIENTS_HOST || '127.0.0.1';
const USER = env.CLIENTS_USER || 'app';
const PASS = env.CLIENTS_PASSWORD || 'app';
const DB = env.CLIENTS_DB || 'splitrail_test';
const RUN = env.CLIENTS_RUN || 'cdev';
const PORTS = {
  proxy: Number(env.CLIENTS_PROXY_PORT || 25033),
  m1: Number(env.CLIENTS_M1_PORT || 25061),
  r1: Number(env.CLIENTS_R1_PORT || 25063),
};
const BLOB_MB = Number(env.CLIENTS_BLOB_MB || 32);
const SCENARIO_TIMEOUT = Number(env.CLIENTS_SCENARIO_TIMEOUT || 120) * 1000;
const ONLY = env.CLIENTS_ONLY ? env.CLIENTS_ONLY.split(',') : [];
const T = `${RUN}_types`;
// The lab's CA (it signed the certificate the MariaDB nodes and splitrail
// serve) and an unrelated one: the tls and tls_wrong_ca scenarios.
const TLS_CA = env.CLIENTS_TLS_CA || '/tmp/splitrail-clients-lab/tls/ca.pem';
const TLS_OTHER_CA = env.CLIENTS_TLS_OTHER_CA || '/tmp/splitrail-clients-lab/tls/other-ca.pem';
// Whether the server session (through splitrail: its session with the
// backend) is TLS: Ssl_cipher is set.
const SSL_ON = "SELECT VARIABLE_VALUE <> '' AS tls FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'";

class NA extends Error {}

// Direct runs go where splitrail routes the scenario: reads to r1, writes
// and transactions to m1.
const portFor = (route) => (TARGET === 'proxy' ? PORTS.proxy : route === 'read' ? PORTS.r1 : PORTS.m1);

function blobOf(n) {
  const unit = Buffer.alloc(512);
  for (let i = 0; i < 256; i++) { unit[i] = i; unit[511 - i] = i; }
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += 512) unit.copy(out, i, 0, Math.min(512, n - i));
  return out;
}
const digest = (b) => crypto.createHash('sha256').update(b).digest('hex').slice(0, 16);

// A JS value as [type, comparable JSON form].
function enc(v) {
  if (v === null) return ['null', null];
  if (v === undefined) return ['undefined', null];
  if (Buffer.isBuffer(v)) return ['Buffer', v.length > 64 ? { len: v.length, sha256: digest(v) } : v.toString('hex')];
  if (v instanceof Date) return ['Date', isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()];
  if (typeof v === 'string') return ['string', v.length > 200 ? { len: v.length, sha256: digest(Buffer.from(v)) } : v];
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return [typeof v, String(v)];
  if (Array.isArray(v)) return ['Array', v.map(enc)];
  if (typeof v === 'object') return [v.constructor ? v.constructor.name : 'object', JSON.parse(JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? String(x) : x)))];
  return [typeof v, String(v)];
}

// Field packets as the client exposes them (mysql2 FieldPacket / mysql
// FieldPacket), without internal buffers.
function meta(fields) {
  if (!fields) return null;
  return fields.map((f) => {
    const o = {};
    for (const k of Object.keys(f).sort()) {
      if (k.startsWith('_') || typeof f[k] === 'function') continue;
      o[k] = f[k];
    }
    for (const k of ['columnType', 'characterSet', 'columnLength', 'flags', 'decimals', 'type', 'typeName', 'encoding']) {
      try { if (f[k] !== undefined && o[k] === undefined) o[k] = f[k]; } catch (e) { /* getter may throw */ }
    }
    return o;
  });
}

// A query's result: rows with types, or the OK packet's fields. Several
// result sets (multi-statement, CALL) come as arrays of results with an
// array of field lists (undefined for an OK).
function result(res, fields) {
  if (Array.isArray(fields) && fields.length && (fields[0] === undefined || Array.isArray(fields[0]))) {
    return { sets: res.map((r, i) => result(r, fields[i])) };
  }
  if (Array.isArray(res)) {
    return { meta: meta(fields), rows: res.map((row) => (Array.isArray(row) ? row.map(enc) : Object.keys(row).map((k) => [k, ...enc(row[k])]))) };
  }
  const o = {};
  for (const k of ['affectedRows', 'changedRows', 'insertId', 'warningStatus', 'warningCount', 'info', 'message', 'serverStatus', 'fieldCount']) {
    if (res && res[k] !== undefined) o[k] = res[k];
  }
  o.type = res && res.constructor ? res.constructor.name : typeof res;
  return o;
}

function errOf(e) {
  return { code: e.code, errno: e.errno, sqlState: e.sqlState, sqlMessage: e.sqlMessage, fatal: e.fatal };
}

async function errorOf(fn) {
  try { await fn(); } catch (e) { if (e instanceof NA) throw e; return errOf(e); }
  return 'no error raised';
}

// ------------------------------------------------------------- adapters ----

class Client {
  constructor(name, lib, ps) {
    this.name = name; this.lib = lib; this.ps = ps; this.open = [];
  }

  connect(route, o = {}) {
    const opts = {
      host: HOST, port: portFor(route), user: USER, password: o.password || PASS,
      charset: o.charset || 'UTF8MB4_GENERAL_CI', connectTimeout: 10000,
      multipleStatements: !!o.multi,
    };
    if (o.db !== false) opts.database = DB;
    if (o.tls) {
      // TLS required (both libraries refuse a server that does not offer
      // it), the certificate checked against this CA; mysql2 also checks
      // the name (127.0.0.1 is in the certificate).
      opts.ssl = { ca: fs.readFileSync(o.tls), rejectUnauthorized: true };
      if (this.name === 'mysql2') opts.ssl.verifyIdentity = true;
    }
    if (o.infile) {
      if (this.name === 'mysql2') opts.infileStreamFactory = (p) => fs.createReadStream(p);
      else opts.localInfile = true;
    }
    const c = this.lib.createConnection(opts);
    this.open.push(c);
    return new Promise((resolve, reject) => c.connect((err) => (err ? reject(err) : resolve(c))));
  }

  // Text protocol.
  q(c, sql, params) {
    return new Promise((resolve, reject) => c.query({ sql, values: params, rowsAsArray: true }, (err, res, fields) => (err ? reject(err) : resolve(result(res, fields)))));
  }

  // Binary protocol (mysql2's execute: prepare once per connection, cached).
  x(c, sql, params) {
    if (!this.ps) throw new NA(`${this.name} has no server-side prepared statements`);
    return new Promise((resolve, reject) => c.execute({ sql, values: params, rowsAsArray: true }, (err, res, fields) => (err ? reject(err) : resolve(result(res, fields)))));
  }

  // Parameterized statement: execute() where there is one, else query().
  p(c, sql, params) { return this.ps ? this.x(c, sql, params) : this.q(c, sql, params); }

  call(c, method, ...args) {
    return new Promise((resolve, reject) => c[method](...args, (err, res) => (err ? reject(err) : resolve(res))));
  }

  // Whether the client's own socket is TLS, where the library tells.
  encrypted(c) {
    if (this.name === 'mysql2') return c.stream instanceof require('tls').TLSSocket && c.stream.encrypted === true;
    return null; // mysqljs keeps its TLSSocket to itself
  }

  closeAll() {
    for (const c of this.open) { try { c.destroy(); } catch (e) { /* already gone */ } }
    this.open = [];
  }
}

const NEG_TIME = '-838:59:59';
const paramValues = (big) => [null, 42, -9007199254740991, '18446744073709551615', 3.5, '-1234567.891', 'plain',
  'é😀 ünï', Buffer.from([0, 0xff, 0x10, 0]), big, new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 123)), '2024-01-02', NEG_TIME, true];

function scenarios(a) {
  const tbl = (s) => `${RUN}_${a.name.replace(/-/g, '_')}_${s}`;
  return {
    async connect() {
      let c = await a.connect('read');
      const out = { with_db: await a.q(c, 'SELECT DATABASE(), CURRENT_USER(), @@character_set_client, @@collation_connection, VERSION()') };
      if (c.serverVersion !== undefined) out.serverVersion = c.serverVersion;
      c = await a.connect('read', { db: false });
      out.without_db = await a.q(c, 'SELECT DATABASE(), CURRENT_USER()');
      out.qualified = await a.q(c, `SELECT COUNT(*) FROM ${DB}.${T}`);
      await a.call(c, 'ping');
      out.after_ping = await a.q(c, 'SELECT 1');
      return out;
    },
    auth_fail: () => errorOf(() => a.connect('read', { password: 'wrong-password' })),
    async types_text() { return a.q(await a.connect('read'), `SELECT * FROM ${T} ORDER BY id`); },
    async types_binary() {
      if (!a.ps) throw new NA(`${a.name} has no server-side prepared statements`);
      return a.x(await a.connect('read'), `SELECT * FROM ${T} WHERE id >= ? ORDER BY id`, [0]);
    },
    async params() {
      const c = await a.connect('read');
      const vals = paramValues(blobOf(1 << 20));
      const out = { protocol: a.ps ? 'binary' : 'text', each: [] };
      for (const v of vals) out.each.push(await a.p(c, 'SELECT ? AS p', [v]).catch(errOf));
      out.all = await a.p(c, `SELECT ${vals.map(() => '?').join(', ')}`, vals).catch(errOf);
      return out;
    },
    async params_dml() {
      const t = tbl('pdml');
      const c = await a.connect('write');
      await a.q(c, `DROP TABLE IF EXISTS ${t}`);
      await a.q(c, `CREATE TABLE ${t} (id INT PRIMARY KEY, n INT, b BIGINT, ub BIGINT UNSIGNED, d DOUBLE, dec_ DECIMAL(10,3), s VARCHAR(20), e VARCHAR(20), vb VARBINARY(8), bl MEDIUMBLOB, dt DATETIME(6), da DATE, ti TIME, bo TINYINT(1)) DEFAULT CHARSET=utf8mb4`);
      const vals = paramValues(blobOf(1 << 20)).slice(1);
      const out = { insert: await a.p(c, `INSERT INTO ${t} VALUES (1, ${vals.map(() => '?').join(', ')})`, vals) };
      out.insert_nulls = await a.p(c, `INSERT INTO ${t} (id, n, bl, dt) VALUES (?, ?, ?, ?)`, [2, null, null, null]);
      out.update = await a.p(c, `UPDATE ${t} SET s = ?, ti = ? WHERE id = ?`, ['updated', '-00:00:00.5', 1]);
      await a.call(c, 'beginTransaction');
      out.read = await a.q(c, `SELECT * FROM ${t} ORDER BY id`);
      if (a.ps) out.read_binary = await a.x(c, `SELECT * FROM ${t} WHERE id > ? ORDER BY id`, [0]);
      await a.call(c, 'commit');
      out.delete = await a.p(c, `DELETE FROM ${t} WHERE id = ?`, [2]);
      await a.q(c, `DROP TABLE ${t}`);
      return out;
    },
    async txn() {
      const t = tbl('txn');
      let c = await a.connect('write');
      await a.q(c, `DROP TABLE IF EXISTS ${t}`);
      await a.q(c, `CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20))`);
      const out = {};
      await a.call(c, 'beginTransaction');
      out.ins1 = await a.q(c, `INSERT INTO ${t} VALUES (1, 'committed')`);
      out.in_txn_1 = await a.q(c, `SELECT * FROM ${t} ORDER BY id`);
      await a.call(c, 'commit');
      await a.call(c, 'beginTransaction');
      await a.q(c, `INSERT INTO ${t} VALUES (2, 'rolled back')`);
      out.in_txn_2 = await a.q(c, `SELECT COUNT(*) FROM ${t}`);
      await a.call(c, 'rollback');
      await a.q(c, 'SET autocommit = 0');
      await a.q(c, `INSERT INTO ${t} VALUES (3, 'autocommit=0')`);
      out.ac0 = await a.q(c, `SELECT * FROM ${t} ORDER BY id`);
      await a.call(c, 'commit');
      await a.q(c, `INSERT INTO ${t} VALUES (4, 'ac0 rolled back')`);
      await a.call(c, 'rollback');
      await a.q(c, 'SET autocommit = 1');
      c = await a.connect('write');
      await a.call(c, 'beginTransaction');
      out.fresh_connection = await a.q(c, `SELECT * FROM ${t} ORDER BY id`);
      await a.call(c, 'commit');
      await a.q(c, `DROP TABLE ${t}`);
      return out;
    },
    async insert_id() {
      const t = tbl('ins');
      const c = await a.connect('write');
      await a.q(c, `DROP TABLE IF EXISTS ${t}`);
      await a.q(c, `CREATE TABLE ${t} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)`);
      const out = {};
      out.single = await a.q(c, `INSERT INTO ${t} (v) VALUES (10)`);
      out.multi = await a.p(c, `INSERT INTO ${t} (v) VALUES (?), (?)`, [20, 30]);
      out.last_insert_id = await a.q(c, 'SELECT LAST_INSERT_ID()');
      await a.call(c, 'beginTransaction');
      out.in_txn_insert = await a.q(c, `INSERT INTO ${t} (v) VALUES (40)`);
      out.in_txn = await a.q(c, 'SELECT LAST_INSERT_ID(), ROW_COUNT()');
      await a.call(c, 'commit');
      await a.q(c, `DROP TABLE ${t}`);
      return out;
    },
    async multi_stmt() {
      const t = tbl('multi');
      const c = await a.connect('write', { multi: true });
      await a.q(c, `DROP TABLE IF EXISTS ${t}`);
      const out = { sets: await a.q(c, `CREATE TABLE ${t} (id INT PRIMARY KEY); INSERT INTO ${t} VALUES (1),(2); SELECT * FROM ${t} ORDER BY id; SELECT 'x' AS x, NULL AS n; UPDATE ${t} SET id = id + 10`) };
      out.error_batch = await errorOf(() => a.q(c, 'SELECT 1; SELECT * FROM no_such_table_xyz; SELECT 3'));
      await a.call(c, 'beginTransaction');
      out.after = await a.q(c, `SELECT COUNT(*) FROM ${t}`);
      await a.call(c, 'commit');
      await a.q(c, `DROP TABLE ${t}`);
      return out;
    },
    async call_2_results() {
      const c = await a.connect('write');
      const out = { text: await a.q(c, `CALL ${RUN}_two_results(3)`) };
      if (a.ps) out.execute = await a.x(c, `CALL ${RUN}_two_results(?)`, [2]);
      out.after = await a.q(c, "SELECT 'still in sync' AS s");
      return out;
    },
    async warnings() {
      const t = tbl('warn');
      const c = await a.connect('write');
      await a.q(c, `DROP TABLE IF EXISTS ${t}`);
      await a.q(c, `CREATE TABLE ${t} (id INT PRIMARY KEY, s VARCHAR(3))`);
      const out = { insert_ignore: await a.q(c, `INSERT IGNORE INTO ${t} VALUES (1, 'toolong'), (1, 'dup')`) };
      out.show_after_insert = await a.q(c, 'SHOW WARNINGS');
      out.select_cast = await a.q(c, "SELECT CAST('12abc' AS SIGNED) AS n, 1/0 AS z");
      out.warning_count = await a.q(c, 'SELECT @@warning_count');
      out.show_after_select = await a.q(c, 'SHOW WARNINGS');
      if (a.ps) {
        out.execute = await a.x(c, 'SELECT CAST(? AS SIGNED)', ['7x']);
        out.show_after_execute = await a.q(c, 'SHOW WARNINGS');
      }
      await a.q(c, `DROP TABLE ${t}`);
      return out;
    },
    async errors() {
      const t = tbl('err');
      const c = await a.connect('write');
      await a.q(c, `DROP TABLE IF EXISTS ${t}`);
      await a.q(c, `CREATE TABLE ${t} (id INT PRIMARY KEY, s VARCHAR(5) NOT NULL)`);
      await a.q(c, `INSERT INTO ${t} VALUES (1, 'a')`);
      const out = {
        no_table: await errorOf(() => a.q(c, 'SELECT * FROM no_such_table_xyz')),
        syntax: await errorOf(() => a.q(c, 'SELEC 1')),
        dup_key: await errorOf(() => a.q(c, `INSERT INTO ${t} VALUES (1, 'b')`)),
        not_null: await errorOf(() => a.q(c, `INSERT INTO ${t} VALUES (2, NULL)`)),
        too_long: await errorOf(() => a.q(c, `INSERT INTO ${t} VALUES (3, 'toolong')`)),
        unknown_column: await errorOf(() => a.q(c, `SELECT nope FROM ${T}`)),
        signal: await errorOf(() => a.q(c, "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom é', MYSQL_ERRNO = 5001")),
      };
      if (a.ps) {
        out.prepare_error = await errorOf(() => a.x(c, 'SELECT * FROM no_such_table_xyz WHERE id = ?', [1]));
        out.execute_error = await errorOf(() => a.x(c, `INSERT INTO ${t} VALUES (?, ?)`, [1, 'dup']));
      }
      await a.call(c, 'beginTransaction');
      out.after = await a.q(c, `SELECT * FROM ${t}`);
      await a.call(c, 'commit');
      await a.q(c, `DROP TABLE ${t}`);
      return out;
    },
    async blob_32mb() {
      const t = tbl('blob');
      const big = blobOf(BLOB_MB << 20);
      const c = await a.connect('write');
      await a.q(c, `DROP TABLE IF EXISTS ${t}`);
      await a.q(c, `CREATE TABLE ${t} (id INT PRIMARY KEY, b LONGBLOB)`);
      // mysql (mysqljs) sends a Buffer as X'hex': 32 MB would be a 64 MB
      // statement, over max_allowed_packet, so it sends two halves.
      const half = a.ps ? big.length : big.length / 2;
      const out = { insert: await a.p(c, `INSERT INTO ${t} VALUES (1, ?)`, [big.subarray(0, half)]) };
      if (!a.ps) out.append = await a.q(c, `UPDATE ${t} SET b = CONCAT(b, ?) WHERE id = 1`, [big.subarray(half)]);
      await a.call(c, 'beginTransaction');
      const sha = crypto.createHash('sha256').update(big).digest('hex');
      const res = await new Promise((resolve, reject) => c.query(`SELECT b, LENGTH(b), SHA2(b, 256) = '${sha}' AS m FROM ${t}`, (e, r) => (e ? reject(e) : resolve(r))));
      await a.call(c, 'commit');
      const row = res[0];
      out.read_back = { type: enc(row.b)[0], len: row.b.length, same_bytes: Buffer.compare(row.b, big) === 0, server_len: enc(row['LENGTH(b)']), server_sha_match: enc(row.m) };
      await a.q(c, `DROP TABLE ${t}`);
      return out;
    },
    async too_large() {
      // A statement over max_allowed_packet (64 MiB): the server reads it
      // all, answers ERROR 1153 (sequence id after the last packet) and
      // closes the connection.
      const c = await a.connect('write');
      return { error: await errorOf(() => a.q(c, `SELECT '${'x'.repeat(65 << 20)}' AS big`)) };
    },
    async utf8mb4() {
      const t = tbl('utf8');
      const s = 'é 😀 中文 ñ 🧑\u200D💻';
      const c = await a.connect('write');
      const out = {
        fixture: await a.q(c, `SELECT c_varchar, CHAR_LENGTH(c_varchar), HEX(c_varchar) FROM ${T} WHERE id = 1`),
        literal: await a.q(c, "SELECT '😀' AS emoji, 'ü' AS u"),
      };
      await a.q(c, `DROP TABLE IF EXISTS ${t}`);
      await a.q(c, `CREATE TABLE ${t} (id INT PRIMARY KEY, s VARCHAR(50)) DEFAULT CHARSET=utf8mb4`);
      await a.p(c, `INSERT INTO ${t} VALUES (1, ?)`, [s]);
      await a.call(c, 'beginTransaction');
      out.read_back = await a.p(c, `SELECT s, HEX(s), s = ? FROM ${t}`, [s]);
      await a.call(c, 'commit');
      await a.q(c, `DROP TABLE ${t}`);
      return out;
    },
    async latin1() {
      const t = tbl('latin1');
      const c = await a.connect('write', { charset: 'LATIN1_SWEDISH_CI' });
      const out = {
        vars: await a.q(c, 'SELECT @@character_set_client, @@character_set_results, @@collation_connection'),
        fixture: await a.q(c, `SELECT c_varchar, HEX(c_varchar) FROM ${T} WHERE id = 1`),
        literal: await a.q(c, "SELECT 'été' AS s, HEX('été') AS h"),
      };
      await a.q(c, `DROP TABLE IF EXISTS ${t}`);
      await a.q(c, `CREATE TABLE ${t} (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4`);
      await a.p(c, `INSERT INTO ${t} VALUES (1, ?)`, ['çà et là']);
      await a.call(c, 'beginTransaction');
      out.read_back = await a.q(c, `SELECT s, HEX(s) FROM ${t}`);
      await a.call(c, 'commit');
      await a.q(c, `DROP TABLE ${t}`);
      return out;
    },
    async load_local() {
      const t = tbl('load');
      const file = path.join(os.tmpdir(), `${t}.tsv`);
      fs.writeFileSync(file, '1\tfirst\n2\tsécond 😀\n3\t\\N\n4\ttoo many\textra\n');
      try {
        const c = await a.connect('write', { infile: true });
        await a.q(c, `DROP TABLE IF EXISTS ${t}`);
        await a.q(c, `CREATE TABLE ${t} (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4`);
        const out = { load: await a.q(c, `LOAD DATA LOCAL INFILE '${file}' INTO TABLE ${t} CHARACTER SET utf8mb4`) };
        out.warnings = await a.q(c, 'SHOW WARNINGS');
        const c2 = await a.connect('write', { infile: true });
        out.missing_file = await errorOf(() => a.q(c2, `LOAD DATA LOCAL INFILE '${file}.missing' INTO TABLE ${t}`));
        out.next_command = await a.q(c2, "SELECT 'next' AS n").catch(errOf);
        await a.call(c, 'beginTransaction');
        out.read_back = await a.q(c, `SELECT * FROM ${t} ORDER BY id`);
        await a.call(c, 'commit');
        await a.q(c, `DROP TABLE ${t}`);
        return out;
      } finally {
        fs.rmSync(file, { force: true });
      }
    },
    async reset_conn() {
      if (a.name !== 'mysql2') throw new NA(`${a.name} has no API for COM_RESET_CONNECTION`);
      const c = await a.connect('write');
      const out = {};
      await a.q(c, 'SET @v = 42');
      out.var_before = await a.q(c, 'SELECT @v');
      await a.q(c, "SET SESSION sql_mode = 'ANSI_QUOTES'");
      await a.q(c, 'CREATE TEMPORARY TABLE tmp_reset (id INT)');
      if (a.ps) out.ps_before = await a.x(c, 'SELECT ? + 1 AS n', [1]);
      await a.call(c, 'beginTransaction');
      await a.q(c, 'INSERT INTO tmp_reset VALUES (1)');
      await a.call(c, 'reset');
      out.var_after = await a.q(c, 'SELECT @v, @@sql_mode = @@GLOBAL.sql_mode AS mode_reset');
      out.temp_gone = await errorOf(() => a.q(c, 'SELECT * FROM tmp_reset'));
      if (a.ps) out.ps_after = await a.x(c, 'SELECT ? + 2 AS n', [1]);
      out.reuse = await a.q(c, `SELECT COUNT(*) FROM ${T}`);
      out.db_kept = await a.q(c, 'SELECT DATABASE()');
      return out;
    },
    async change_user() {
      const c = await a.connect('write');
      const out = {};
      await a.q(c, 'SET @v = 7');
      await a.q(c, 'CREATE TEMPORARY TABLE tmp_cu (id INT)');
      await a.call(c, 'changeUser', { user: USER, password: PASS, database: DB });
      out.after = await a.q(c, 'SELECT @v, CURRENT_USER(), DATABASE()');
      out.temp_gone = await errorOf(() => a.q(c, 'SELECT * FROM tmp_cu'));
      out.reuse = await a.q(c, `SELECT COUNT(*) FROM ${T}`);
      out.wrong_password = await errorOf(() => a.call(c, 'changeUser', { user: USER, password: 'nope', database: DB }));
      return out;
    },
    // TLS required and verified against the lab's CA: a read, a write in a
    // transaction, a prepared statement (mysql2).
    async tls() {
      const t = tbl('tls');
      let c = await a.connect('read', { tls: TLS_CA });
      const out = { read_client_tls: a.encrypted(c) };
      out.read = await a.q(c, `SELECT id, c_varchar, c_decimal, c_json FROM ${T} ORDER BY id`);
      out.read_literal = await a.q(c, "SELECT 'TLS ✓ é 😀' AS s, CURRENT_USER() AS u");
      out.read_session_tls = await a.q(c, SSL_ON);
      c = await a.connect('write', { tls: TLS_CA });
      out.write_client_tls = a.encrypted(c);
      await a.q(c, `DROP TABLE IF EXISTS ${t}`);
      await a.q(c, `CREATE TABLE ${t} (id INT PRIMARY KEY, s VARCHAR(40)) DEFAULT CHARSET=utf8mb4`);
      await a.call(c, 'beginTransaction');
      out.insert = await a.p(c, `INSERT INTO ${t} VALUES (?, ?), (?, ?)`, [1, 'over TLS 😀', 2, 'deux']);
      out.in_txn = await a.q(c, `SELECT * FROM ${t} ORDER BY id`);
      out.write_session_tls = await a.q(c, SSL_ON);
      await a.call(c, 'commit');
      if (a.ps) out.prepared = await a.x(c, `SELECT s, ? FROM ${t} WHERE id = ?`, ['é', 1]);
      await a.call(c, 'beginTransaction');
      out.after_commit = await a.q(c, `SELECT COUNT(*) FROM ${t}`);
      await a.call(c, 'commit');
      await a.q(c, `DROP TABLE ${t}`);
      return out;
    },
    // Verified against a CA that did not sign the server's certificate: the
    // connect fails (its error code, not the message, is compared).
    async tls_wrong_ca() {
      try {
        await a.connect('read', { tls: TLS_OTHER_CA });
      } catch (e) {
        return { failed: true, code: e.code, fatal: e.fatal };
      }
      return { failed: false };
    },
  };
}

function emit(client, scenario, status, result, reason, secs) {
  const line = { client, scenario, target: TARGET, status, result: result === undefined ? null : result, secs: Math.round(secs * 1000) / 1000 };
  if (reason) line.reason = reason;
  process.stdout.write(JSON.stringify(line, (k, v) => (typeof v === 'bigint' ? String(v) : v)) + '\n');
}

async function main() {
  const clients = [new Client('mysql2', require('mysql2'), true), new Client('mysql', require('mysql'), false)];
  for (const a of clients) {
    for (const [name, fn] of Object.entries(scenarios(a))) {
      if (ONLY.length && !ONLY.includes(a.name) && !ONLY.includes(name)) continue;
      const t0 = Date.now();
      let timer;
      const hang = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`scenario did not finish within ${SCENARIO_TIMEOUT / 1000}s (hang?)`)), SCENARIO_TIMEOUT); });
      try {
        const r = await Promise.race([fn(), hang]);
        emit(a.name, name, 'ok', r, null, (Date.now() - t0) / 1000);
      } catch (e) {
        if (e instanceof NA) emit(a.name, name, 'na', null, e.message, (Date.now() - t0) / 1000);
        else emit(a.name, name, 'error', { exception: e.constructor.name, message: String(e.message).slice(0, 500), ...errOf(e) }, String(e.stack).slice(0, 1500), (Date.now() - t0) / 1000);
      } finally {
        clearTimeout(timer);
        a.closeAll();
      }
    }
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
