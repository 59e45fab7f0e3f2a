//! The operator commands that talk to a running proxy's admin endpoint:
//! `splitrail nodes`, `splitrail node down|drain|up|promote NAME`,
//! `splitrail reload`. Blocking HTTP (ureq) is fine here: one request per
//! command, no runtime needed.

use crate::admin::NodeView;
use crate::config::Config;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot reach the admin endpoint at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url}: {message}")]
    Refused { url: String, message: String },
    #[error(
        "no admin token: pass --token, set SPLITRAIL_ADMIN_TOKEN, or give -c with [admin] token"
    )]
    NoToken,
    /// Some proxies applied the command, some did not.
    #[error("{done}failed on {failed} of {total} proxies:\n{errors}")]
    Partial {
        done: String,
        failed: usize,
        total: usize,
        errors: String,
    },
}

/// Where the admin endpoints are and the token to use.
pub struct AdminTarget {
    pub urls: Vec<String>,
    pub token: String,
}

impl AdminTarget {
    /// `admin`: comma-separated `host:port` or URLs (several proxies at
    /// once); else the config's `[admin] listen`; else 127.0.0.1:6034.
    pub fn resolve(
        admin: Option<&str>,
        token: Option<&str>,
        config: Option<&Path>,
    ) -> Result<AdminTarget, CliError> {
        let config = config.map(Config::load).transpose()?;
        let listed = admin.map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        });
        let urls: Vec<String> = listed
            .or_else(|| config.as_ref().map(|c| vec![c.admin.listen.clone()]))
            .unwrap_or_else(|| vec!["127.0.0.1:6034".into()])
            .into_iter()
            .map(|a| {
                if a.starts_with("http") {
                    a
                } else {
                    format!("http://{a}")
                }
            })
            .collect();
        let token = token
            .map(String::from)
            .or_else(|| {
                std::env::var("SPLITRAIL_ADMIN_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty())
            })
            .or_else(|| config.as_ref().and_then(|c| c.admin.effective_token()))
            .ok_or(CliError::NoToken)?;
        Ok(AdminTarget { urls, token })
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

fn request(target: &AdminTarget, url: &str, post: bool) -> Result<String, CliError> {
    let auth = format!("Bearer {}", target.token);
    let response = if post {
        agent()
            .post(url)
            .header("Authorization", &auth)
            .send_empty()
    } else {
        agent().get(url).header("Authorization", &auth).call()
    };
    let mut response = response.map_err(|e| CliError::Unreachable {
        url: url.into(),
        reason: e.to_string(),
    })?;
    let status = response.status();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or(body);
        return Err(CliError::Refused {
            url: url.into(),
            message: format!("{status}: {message}"),
        });
    }
    Ok(body)
}

/// `splitrail nodes`: the first proxy's node table.
pub fn nodes(target: &AdminTarget, json: bool) -> Result<String, CliError> {
    let url = format!("{}/nodes", target.urls[0]);
    let body = request(target, &url, false)?;
    if json {
        return Ok(body);
    }
    let views: Vec<NodeView> = serde_json::from_str(&body).map_err(|e| CliError::Refused {
        url,
        message: format!("unexpected answer: {e}"),
    })?;
    Ok(format_table(&views))
}

/// `splitrail node ACTION NAME` on every listed proxy. Every proxy is
/// tried, so the output says exactly which ones applied it.
/// `force`: promote even a master with errant transactions.
pub fn node_action(
    target: &AdminTarget,
    action: &str,
    name: &str,
    force: bool,
) -> Result<String, CliError> {
    let what = match action {
        "down" => "marked down: it gets no new statements",
        "drain" => "draining: no new sessions use it",
        "up" => "mark cleared: it takes traffic again when healthy",
        "promote" => "is now the writer",
        _ => "done",
    };
    on_every_proxy(target, |base| {
        let query = if force { "?force=true" } else { "" };
        let body = request(
            target,
            &format!("{base}/nodes/{name}/{action}{query}"),
            true,
        )?;
        Ok(match serde_json::from_str::<NodeView>(&body) {
            Ok(v) => format!(
                "{base}: {name} {what} (role {}, health {})\n",
                v.role, v.health
            ),
            Err(_) => format!("{base}: {name} {what}\n"),
        })
    })
}

/// `splitrail reload` on every listed proxy.
pub fn reload(target: &AdminTarget) -> Result<String, CliError> {
    on_every_proxy(target, |base| {
        let body = request(target, &format!("{base}/reload"), true)?;
        Ok(format!("{base}: reloaded {body}\n"))
    })
}

fn on_every_proxy(
    target: &AdminTarget,
    each: impl Fn(&str) -> Result<String, CliError>,
) -> Result<String, CliError> {
    let mut done = String::new();
    let mut errors: Vec<CliError> = Vec::new();
    for base in &target.urls {
        match each(base) {
            Ok(line) => done.push_str(&line),
            Err(e) => errors.push(e),
        }
    }
    match (errors.len(), target.urls.len()) {
        (0, _) => Ok(done),
        // A single proxy: its own error says it all.
        (1, 1) => Err(errors.remove(0)),
        (failed, total) => Err(CliError::Partial {
            done,
            failed,
            total,
            errors: errors.iter().map(|e| format!("  {e}\n")).collect(),
        }),
    }
}

pub fn format_table(views: &[NodeView]) -> String {
    let mut out = format!(
        "{:<10} {:<8} {:<8} {:<6} {:>5} {:>6} {:>8} {:>8} {:>7}  {:<22} {}\n",
        "NAME",
        "ROLE",
        "HEALTH",
        "MARK",
        "LAG",
        "CONNS",
        "QPS",
        "QUERIES",
        "ERRORS",
        "ADDRESS",
        "GTID / SOURCE"
    );
    for v in views {
        let lag = match (v.replication, v.lag_seconds) {
            (Some(crate::topology::Replication::Stopped), _) => "stop".to_string(),
            (Some(crate::topology::Replication::Reconnecting), _) => "conn".to_string(),
            (_, Some(l)) => format!("{l}s"),
            _ => "-".to_string(),
        };
        let mark = match v.mark {
            crate::topology::Mark::None => "-",
            crate::topology::Mark::Down => "down",
            crate::topology::Mark::Drain => "drain",
        };
        // Masters: their own GTID stream's position (a standby: also whom
        // it replicates from and how many of the writer's transactions it
        // lacks); replicas: whom they replicate from.
        let mut stream = match (&v.own_gtid, &v.source) {
            (Some(g), Some(src)) => format!("{g} from {src}"),
            (Some(g), None) => g.clone(),
            (None, Some(src)) => format!("from {src}"),
            (None, None) => "-".into(),
        };
        if let Some(behind) = v.behind_writer {
            stream.push_str(&format!(", {behind} behind"));
        }
        out.push_str(&format!(
            "{:<10} {:<8} {:<8} {:<6} {:>5} {:>6} {:>8.1} {:>8} {:>7}  {:<22} {}\n",
            v.name,
            v.role,
            v.health,
            mark,
            lag,
            v.connections,
            v.qps,
            v.queries,
            v.errors,
            v.addr,
            stream
        ));
        if let Some(alarm) = &v.second_writer {
            out.push_str(&format!("{:<10} SECOND WRITER: {alarm}\n", ""));
        }
        if let Some(errant) = &v.errant {
            out.push_str(&format!(
                "{:<10} ERRANT: {errant}, which the writer lacks\n",
                ""
            ));
        }
        if let Some(e) = &v.last_error {
            out.push_str(&format!("{:<10} last error: {e}\n", ""));
        }
    }
    out
}
