//! A bare tokio TCP byte relay: the floor reference for `bench/run`.
//!
//! It accepts on `--listen`, opens one connection to `--backend` per client,
//! sets TCP_NODELAY on both sides and copies bytes both ways with
//! `tokio::io::copy_bidirectional`. Nothing is parsed, routed or pooled, so
//! its throughput and CPU per query are what our own stack (tokio on this
//! machine) costs at the very least; splitrail, which parses and routes
//! every statement, is measured against it.
//!
//! ```sh
//! cargo run --release --example tcp_relay -- --listen 127.0.0.1:36070 --backend 127.0.0.1:36063
//! ```

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: tcp_relay --listen ADDR --backend ADDR";

fn parse_args() -> Result<(SocketAddr, SocketAddr), String> {
    let mut listen = None;
    let mut backend = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--listen" => &mut listen,
            "--backend" => &mut backend,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        let addr = value
            .parse()
            .map_err(|e| format!("{arg} {value:?}: {e}\n{USAGE}"))?;
        *slot = Some(addr);
    }
    match (listen, backend) {
        (Some(l), Some(b)) => Ok((l, b)),
        _ => Err(USAGE.to_string()),
    }
}

async fn relay(mut client: TcpStream, backend: SocketAddr) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut server = TcpStream::connect(backend).await?;
    server.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let (listen, backend) = match parse_args() {
        Ok(addrs) => addrs,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tcp_relay: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("tcp_relay: {listen} -> {backend}");
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(async move {
                    // A reset by either side is the normal end of a session.
                    let _ = relay(client, backend).await;
                });
            }
            // EMFILE and friends: back off briefly instead of spinning.
            Err(e) => {
                eprintln!("tcp_relay: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
