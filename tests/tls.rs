//! TLS on both sides, checked with the mariadb command-line client (a real
//! libmariadb/OpenSSL peer) and the lab's own CA (proto-tests/lab make_tls):
//! clients → splitrail with `[tls]`, `tls.require`, users' `require_tls`,
//! caching_sha2_password full authentication over TLS and over plain TCP
//! (RSA), and splitrail → backends with `[backend_tls]`.

mod support;

use mysql_async::prelude::*;
use splitrail::config::{BackendTlsMode, Config};
use std::process::Output;
use support::*;

fn tls_dir() -> String {
    let lab_dir = std::env::var("LAB_DIR").unwrap_or_else(|_| "/tmp/splitrail-lab".into());
    format!("{lab_dir}/tls")
}

fn tls_file(name: &str) -> String {
    format!("{}/{name}", tls_dir())
}

/// The lab config with splitrail serving the lab's server certificate.
fn tls_config() -> Config {
    let mut cfg = config();
    cfg.tls.cert_file = tls_file("server.pem");
    cfg.tls.key_file = tls_file("server-key.pem");
    cfg
}

/// Runs the mariadb client against `proxy` with `args` (after the
/// connection options) and returns its output.
async fn mariadb(proxy: &Proxy, user: &str, password: &str, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new("mariadb");
    cmd.args([
        "--no-defaults",
        "-h127.0.0.1",
        "--connect-timeout=5",
        "-N",
        "-B",
    ])
    .arg(format!("-P{}", proxy.addr.port()))
    .arg(format!("-u{user}"))
    .arg(format!("-p{password}"))
    .args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run the mariadb client"))
        .await
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn verified_tls() -> Vec<String> {
    vec![
        "--ssl".into(),
        format!("--ssl-ca={}", tls_file("ca.pem")),
        "--ssl-verify-server-cert".into(),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn mariadb_cli_verifies_splitrail_certificate_and_queries_over_tls() {
    let proxy = start_proxy(tls_config()).await;
    let mut a = verified_tls();
    a.extend(["-e".into(), "status".into()]);
    let out = mariadb(&proxy, "app", "app", &args(&a)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Cipher in use is"),
        "no TLS in: {}",
        stdout(&out)
    );

    // Reads and writes work as over plain TCP.
    let mut a = verified_tls();
    let table = unique("tls_t");
    a.extend([
        "-e".into(),
        format!(
            "CREATE TABLE {DB}.{table} (id INT PRIMARY KEY, v MEDIUMTEXT); \
             INSERT INTO {DB}.{table} VALUES (1, REPEAT('x', 100000)); \
             SELECT LENGTH(v) FROM {DB}.{table}; DROP TABLE {DB}.{table}"
        ),
    ]);
    let out = mariadb(&proxy, "app", "app", &args(&a)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "100000");

    // A client that trusts another CA refuses splitrail's certificate.
    let a = [
        "--ssl".to_string(),
        format!("--ssl-ca={}", tls_file("other-ca.pem")),
        "--ssl-verify-server-cert".into(),
        "-e".into(),
        "SELECT 1".into(),
    ];
    let out = mariadb(&proxy, "app", "app", &args(&a)).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("TLS/SSL error"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_client_requiring_tls_gets_a_clear_error_from_a_proxy_without_it() {
    let proxy = start_proxy(config()).await;
    let mut a = verified_tls();
    a.extend(["-e".into(), "SELECT 1".into()]);
    let out = mariadb(&proxy, "app", "app", &args(&a)).await;
    assert!(!out.status.success(), "connected without TLS");
    let err = stderr(&out);
    assert!(
        err.contains("SSL") || err.contains("TLS"),
        "the error does not mention TLS: {err}"
    );
}

#[tokio::test]
async fn tls_require_refuses_plain_logins_with_3159() {
    let mut cfg = tls_config();
    cfg.tls.require = true;
    let proxy = start_proxy(cfg).await;
    let out = mariadb(&proxy, "app", "app", &["--skip-ssl", "-e", "SELECT 1"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ERROR 3159"), "{}", stderr(&out));
    let mut a = verified_tls();
    a.extend(["-e".into(), "SELECT 7".into()]);
    let out = mariadb(&proxy, "app", "app", &args(&a)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "7");
}

#[tokio::test]
async fn a_user_with_require_tls_is_refused_over_plain_tcp() {
    let mut cfg = tls_config();
    cfg.users[0].require_tls = true;
    let proxy = start_proxy(cfg).await;
    let out = mariadb(&proxy, "app", "app", &["--skip-ssl", "-e", "SELECT 1"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ERROR 1045"), "{}", stderr(&out));
    let mut a = verified_tls();
    a.extend(["-e".into(), "SELECT 8".into()]);
    let out = mariadb(&proxy, "app", "app", &args(&a)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "8");
}

/// A user known only by its native hash: a caching_sha2_password client
/// must send the password itself (full authentication), in clear over TLS
/// or RSA-encrypted with splitrail's public key over plain TCP.
#[tokio::test]
async fn caching_sha2_full_authentication_over_tls_and_over_rsa() {
    let mut cfg = tls_config();
    // SELECT PASSWORD('app'); the backend login still uses "app".
    cfg.users[0].password_hash = "*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3".into();
    let proxy = start_proxy(cfg).await;
    let sha2 = "--default-auth=caching_sha2_password";

    let mut a = verified_tls();
    a.extend([sha2.into(), "-e".into(), "SELECT 'tls'".into()]);
    let out = mariadb(&proxy, "app", "app", &args(&a)).await;
    assert!(out.status.success(), "over TLS: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "tls");

    let out = mariadb(
        &proxy,
        "app",
        "app",
        &["--skip-ssl", sha2, "-e", "SELECT 'rsa'"],
    )
    .await;
    assert!(out.status.success(), "over RSA: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "rsa");

    for transport in [vec!["--skip-ssl".to_string()], verified_tls()] {
        let mut a = transport.clone();
        a.extend([sha2.into(), "-e".into(), "SELECT 1".into()]);
        let out = mariadb(&proxy, "app", "wrong", &args(&a)).await;
        assert!(
            !out.status.success(),
            "{transport:?}: wrong password accepted"
        );
        assert!(stderr(&out).contains("ERROR 1045"), "{}", stderr(&out));
    }
}

/// With `proxy.auth_plugin = "caching_sha2_password"` the greeting
/// announces MySQL 8's default: libmariadb then answers with that plugin at
/// once, with no switch, fast for a known password, full for a hash.
#[tokio::test]
async fn announcing_caching_sha2_is_followed_by_the_client() {
    use splitrail::config::AuthPluginName;
    for hashed in [false, true] {
        let mut cfg = tls_config();
        cfg.proxy.auth_plugin = AuthPluginName::CachingSha2Password;
        if hashed {
            cfg.users[0].password_hash = "*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3".into();
        }
        let proxy = start_proxy(cfg).await;
        for transport in [vec!["--skip-ssl".to_string()], verified_tls()] {
            let mut a = transport.clone();
            a.extend(["-e".into(), "SELECT 'announced'".into()]);
            let out = mariadb(&proxy, "app", "app", &args(&a)).await;
            assert!(
                out.status.success(),
                "hashed={hashed} {transport:?}: {}",
                stderr(&out)
            );
            assert_eq!(stdout(&out).trim(), "announced");
            let mut a = transport.clone();
            a.extend(["-e".into(), "SELECT 1".into()]);
            let out = mariadb(&proxy, "app", "nope", &args(&a)).await;
            assert!(stderr(&out).contains("ERROR 1045"), "{}", stderr(&out));
        }
    }
}

#[tokio::test]
async fn caching_sha2_fast_auth_from_the_mariadb_client() {
    let proxy = start_proxy(config()).await;
    let sha2 = "--default-auth=caching_sha2_password";
    let out = mariadb(
        &proxy,
        "app",
        "app",
        &["--skip-ssl", sha2, "-e", "SELECT 'fast'"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "fast");
    let out = mariadb(
        &proxy,
        "app",
        "wrong",
        &["--skip-ssl", sha2, "-e", "SELECT 1"],
    )
    .await;
    assert!(stderr(&out).contains("ERROR 1045"), "{}", stderr(&out));
}

/// `Ssl_cipher` is a session status variable: through splitrail it is the
/// backend connection's own, so it shows whether that hop is encrypted.
async fn backend_ciphers(proxy: &Proxy) -> (String, String) {
    let mut conn = proxy.conn().await;
    let replica: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    let master: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    (replica.unwrap().1, master.unwrap().1)
}

#[tokio::test]
async fn backend_connections_use_tls_verified_against_the_ca() {
    // Plain by default.
    let proxy = start_proxy(config()).await;
    assert_eq!(
        backend_ciphers(&proxy).await,
        (String::new(), String::new())
    );
    drop(proxy);

    for mode in [BackendTlsMode::VerifyIdentity, BackendTlsMode::VerifyCa] {
        let mut cfg = config();
        cfg.backend_tls.mode = mode;
        cfg.backend_tls.ca_file = tls_file("ca.pem");
        let proxy = start_proxy(cfg).await;
        let (replica, master) = backend_ciphers(&proxy).await;
        // The monitor reaches the nodes over TLS too and sees them up.
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let (_, nodes) = admin(&proxy, "GET", "/nodes", Some(ADMIN_TOKEN)).await;
        assert!(!nodes.contains("\"health\":\"down\""), "{mode:?}: {nodes}");
        assert!(!replica.is_empty(), "{mode:?}: replica hop not encrypted");
        assert!(!master.is_empty(), "{mode:?}: master hop not encrypted");
    }
}

#[tokio::test]
async fn a_backend_certificate_from_another_ca_is_refused_without_failover() {
    let _guard = exclusive().await;
    let mut cfg = config();
    cfg.backend_tls.mode = BackendTlsMode::VerifyCa;
    cfg.backend_tls.ca_file = tls_file("other-ca.pem");
    // The health monitor would (rightly) see every node as unreachable;
    // this test is about the data path's verdict.
    cfg.monitor.user = String::new();
    let proxy = start_proxy(cfg).await;
    // mysql_async reads a few variables right after login, so the error may
    // come at connect time or with the first statement.
    for sql in ["SELECT 1", "SELECT 1 FOR UPDATE"] {
        let err = match mysql_async::Conn::from_url(proxy.url(None)).await {
            Err(e) => e.to_string(),
            Ok(mut conn) => conn.query_drop(sql).await.unwrap_err().to_string(),
        };
        assert!(err.contains("TLS to backend"), "{sql}: {err}");
    }
    let (_, nodes) = admin(&proxy, "GET", "/nodes", Some(ADMIN_TOKEN)).await;
    let nodes: serde_json::Value = serde_json::from_str(&nodes).unwrap();
    let m1 = &nodes[0];
    assert_eq!(
        (&m1["name"], &m1["role"]),
        (&"m1".into(), &"writer".into()),
        "a certificate problem must not fail over: {nodes}"
    );
    assert_ne!(m1["health"], "down", "nor mark m1 down: {nodes}");
}

#[tokio::test]
async fn required_mode_encrypts_without_checking_the_certificate() {
    let mut cfg = config();
    cfg.backend_tls.mode = BackendTlsMode::Required;
    let proxy = start_proxy(cfg).await;
    let (replica, master) = backend_ciphers(&proxy).await;
    assert!(!replica.is_empty() && !master.is_empty());
}

/// A `REQUIRE X509` account logs in to backends only with a client
/// certificate signed by the servers' CA.
#[tokio::test]
async fn client_certificate_for_x509_backend_accounts() {
    let user = "x509app";
    for node in ["m1", "m2", "r1", "r2"] {
        let sql = format!(
            "SET sql_log_bin=0; CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY 'x509pw' \
             REQUIRE X509; GRANT SELECT ON *.* TO '{user}'@'%'"
        );
        let status = std::process::Command::new(lab_script())
            .args(["sql", node, &sql])
            .status()
            .unwrap();
        assert!(status.success(), "creating {user} on {node}");
    }
    let configure = |with_cert: bool| {
        let mut cfg = config();
        cfg.users[0].name = user.into();
        cfg.users[0].password = "x509pw".into();
        cfg.backend_tls.mode = BackendTlsMode::VerifyIdentity;
        cfg.backend_tls.ca_file = tls_file("ca.pem");
        if with_cert {
            cfg.backend_tls.cert_file = tls_file("client.pem");
            cfg.backend_tls.key_file = tls_file("client-key.pem");
        }
        cfg
    };
    let url = |proxy: &Proxy| format!("mysql://{user}:x509pw@{}/{DB}", proxy.addr);
    let proxy = start_proxy(configure(true)).await;
    let mut conn = connect(&url(&proxy)).await;
    let one: Option<i32> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    drop(conn);
    drop(proxy);

    let proxy = start_proxy(configure(false)).await;
    let refused = match mysql_async::Conn::from_url(url(&proxy)).await {
        Err(e) => server_error_code(&e),
        Ok(mut conn) => {
            let e = conn.query_drop("SELECT 1").await.unwrap_err();
            server_error_code(&e)
        }
    };
    assert_eq!(refused, Some(1045), "without a client certificate");
}

/// COM_CHANGE_USER is no way around `require_tls`: a plain-TCP session
/// cannot become a user that must use TLS.
#[tokio::test]
async fn change_user_to_a_require_tls_user_over_plain_tcp_is_refused() {
    let mut cfg = tls_config();
    cfg.users[0].require_tls = true;
    let mut low: splitrail::config::UserConfig =
        toml::from_str("name = 'monitor'\npassword = 'monitor'").unwrap();
    low.require_tls = false;
    cfg.users.push(low);
    let proxy = start_proxy(cfg).await;
    let url = format!(
        "mysql://monitor:monitor@{}/?prefer_socket=false",
        proxy.addr
    );
    let mut conn = connect(&url).await;
    let target = mysql_async::ChangeUserOpts::default()
        .with_user(Some("app".into()))
        .with_pass(Some("app".into()));
    let err = conn
        .change_user(target)
        .await
        .expect_err("became a require_tls user over plain TCP");
    assert_eq!(server_error_code(&err), Some(1045), "{err}");
}
