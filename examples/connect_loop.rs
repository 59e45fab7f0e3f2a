//! A PHP-style workload: N sessions one after another, each connecting,
//! running one `SELECT 1` and disconnecting. Times what a new session
//! costs through splitrail (see `pool.fresh_defaults` in
//! docs/configuration.md); pair two runs with `farm-bench --vs`.
//!
//! `cargo run --release --example connect_loop -- PORT N`

use mysql_async::prelude::*;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: connect_loop PORT SESSIONS";
    let port: u16 = args.next().ok_or(usage)?.parse()?;
    let sessions: usize = args.next().ok_or(usage)?.parse()?;
    for _ in 0..sessions {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(port)
            .user(Some("app"))
            .pass(Some("app"))
            .db_name(Some("splitrail_test"))
            .prefer_socket(false);
        let mut conn = mysql_async::Conn::new(opts).await?;
        let _: Option<i64> = conn.query_first("SELECT 1").await?;
        conn.disconnect().await?;
    }
    Ok(())
}
