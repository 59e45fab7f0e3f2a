//! Prometheus metrics. Handles are resolved once per node at start-up so
//! the hot path only bumps atomics (no label lookups per statement).

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Per-node handles.
#[derive(Clone)]
pub struct NodeMetrics {
    pub queries: IntCounter,
    pub errors: IntCounter,
    /// Open backend connections to this node (pooled or in use).
    pub backend_connections: IntGauge,
    pub idle_connections: IntGauge,
    pub lag_seconds: IntGauge,
    pub up: IntGauge,
    /// 1 while a standby master takes writes of its own.
    pub second_writer: IntGauge,
}

pub struct Metrics {
    registry: Registry,
    nodes: Vec<NodeMetrics>,
    pub failovers: IntCounter,
    /// With coordination: this instance's compare-and-swaps of the writer
    /// record, by outcome (`won`, `lost`: another instance moved it first).
    pub writer_swaps: IntCounterVec,
    pub client_connections: IntGauge,
    latency: Histogram,
    /// Queries per second per node over the last monitor interval, as f64
    /// bits (written by the monitor, read by the admin endpoint).
    qps: Vec<AtomicU64>,
}

impl Metrics {
    /// `nodes`: (name, role) per node id.
    pub fn new(nodes: &[(String, &'static str)]) -> Metrics {
        let registry = Registry::new_custom(Some("splitrail".into()), None).expect("valid prefix");
        let counter_vec = |name: &str, help: &str| {
            let v =
                IntCounterVec::new(Opts::new(name, help), &["node", "role"]).expect("valid metric");
            registry
                .register(Box::new(v.clone()))
                .expect("unique metric");
            v
        };
        let gauge_vec = |name: &str, help: &str| {
            let v =
                IntGaugeVec::new(Opts::new(name, help), &["node", "role"]).expect("valid metric");
            registry
                .register(Box::new(v.clone()))
                .expect("unique metric");
            v
        };
        let queries = counter_vec("queries_total", "Statements run, by backend node");
        let errors = counter_vec(
            "backend_errors_total",
            "Statements that ended with a backend or connection error",
        );
        let conns = gauge_vec("backend_connections", "Open backend connections");
        let idle = gauge_vec("pool_idle_connections", "Idle pooled backend connections");
        let lag = gauge_vec("replica_lag_seconds", "Replication lag seen by the monitor");
        let up = gauge_vec("node_up", "1 when the node is usable");
        let second_writer = gauge_vec(
            "second_writer",
            "1 while this standby master commits transactions of its own (something else writes to it)",
        );
        let nodes: Vec<NodeMetrics> = nodes
            .iter()
            .map(|(name, role)| {
                let labels = [name.as_str(), *role];
                NodeMetrics {
                    queries: queries.with_label_values(&labels),
                    errors: errors.with_label_values(&labels),
                    backend_connections: conns.with_label_values(&labels),
                    idle_connections: idle.with_label_values(&labels),
                    lag_seconds: lag.with_label_values(&labels),
                    up: up.with_label_values(&labels),
                    second_writer: second_writer.with_label_values(&labels),
                }
            })
            .collect();
        let failovers = IntCounter::new(
            "failovers_total",
            "Times the writer role moved to another master",
        )
        .expect("valid");
        registry
            .register(Box::new(failovers.clone()))
            .expect("unique metric");
        let writer_swaps = IntCounterVec::new(
            Opts::new(
                "writer_swaps_total",
                "Compare-and-swaps of the cluster's writer record by this instance, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(writer_swaps.clone()))
            .expect("unique metric");
        let client_connections =
            IntGauge::new("client_connections", "Connected clients").expect("valid");
        registry
            .register(Box::new(client_connections.clone()))
            .expect("unique metric");
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "statement_duration_seconds",
                "Time from command received to response relayed",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                5.0,
            ]),
        )
        .expect("valid");
        registry
            .register(Box::new(latency.clone()))
            .expect("unique metric");
        let qps = nodes.iter().map(|_| AtomicU64::new(0)).collect();
        Metrics {
            registry,
            nodes,
            failovers,
            writer_swaps,
            client_connections,
            latency,
            qps,
        }
    }

    pub fn node(&self, id: usize) -> &NodeMetrics {
        &self.nodes[id]
    }

    /// Records one statement's outcome.
    pub fn statement(&self, node: usize, elapsed: Duration, failed: bool) {
        let m = &self.nodes[node];
        m.queries.inc();
        if failed {
            m.errors.inc();
        }
        self.latency.observe(elapsed.as_secs_f64());
    }

    pub fn set_qps(&self, node: usize, qps: f64) {
        self.qps[node].store(qps.to_bits(), Ordering::Relaxed);
    }

    pub fn qps(&self, node: usize) -> f64 {
        f64::from_bits(self.qps[node].load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_show_up_in_the_exposition() {
        let m = Metrics::new(&[("m1".into(), "master"), ("r1".into(), "replica")]);
        m.statement(1, Duration::from_micros(300), false);
        m.statement(1, Duration::from_micros(300), true);
        let text = m.render();
        assert!(
            text.contains("splitrail_queries_total{node=\"r1\",role=\"replica\"} 2"),
            "{text}"
        );
        assert!(text.contains("splitrail_backend_errors_total{node=\"r1\",role=\"replica\"} 1"));
        assert!(text.contains("splitrail_statement_duration_seconds_count 2"));
    }
}
