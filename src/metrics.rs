//! What `/metrics` shows, in Prometheus text format: every metric is
//! declared here, with its help text, and counted where the thing happens
//! (one process, one set of counters: a global, as Prometheus clients are).
//! Values that are state rather than events — grants by state, outbox
//! depth, journal lag, disk use — are read when scraped, from the component
//! that owns them, so they are right after a restart too.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccessLabels {
    /// `allowed` or `denied`.
    pub outcome: &'static str,
    /// What was asked for: page, redeem, wado, download, …
    pub kind: String,
    /// Why it was denied (empty when allowed).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabel {
    pub worker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

pub struct Metrics {
    pub associations_open: Gauge,
    pub associations: Counter,
    pub associations_refused: Family<ReasonLabel, Counter>,
    pub instances_received: Counter,
    pub bytes_received: Counter,
    pub instances_refused: Counter,
    pub studies_completed: Counter,
    pub grants_issued: Counter,
    pub grants: Family<StateLabel, Gauge>,
    pub accesses: Family<AccessLabels, Counter>,
    pub bytes_served: Counter,
    pub outbox_depth: Gauge,
    pub outbox_retries: Counter,
    pub forward_depth: Gauge,
    pub journal_lag: Gauge,
    pub journal_writable: Gauge,
    pub journal_dropped: Counter,
    pub accesses_unjournaled: Counter,
    pub disk_used_ratio: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub disk_free_bytes: Gauge,
    pub disk_over_high_water: Gauge,
    pub studies_deleted: Family<ReasonLabel, Counter>,
    pub reloads: Family<StateLabel, Counter>,
    pub worker_up: Family<WorkerLabel, Gauge>,
    registry: Registry,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            associations_open: Gauge::default(),
            associations: Counter::default(),
            associations_refused: Family::default(),
            instances_received: Counter::default(),
            bytes_received: Counter::default(),
            instances_refused: Counter::default(),
            studies_completed: Counter::default(),
            grants_issued: Counter::default(),
            grants: Family::default(),
            accesses: Family::default(),
            bytes_served: Counter::default(),
            outbox_depth: Gauge::default(),
            outbox_retries: Counter::default(),
            forward_depth: Gauge::default(),
            journal_lag: Gauge::default(),
            journal_writable: Gauge::default(),
            journal_dropped: Counter::default(),
            accesses_unjournaled: Counter::default(),
            disk_used_ratio: Gauge::default(),
            disk_free_bytes: Gauge::default(),
            disk_over_high_water: Gauge::default(),
            studies_deleted: Family::default(),
            reloads: Family::default(),
            worker_up: Family::default(),
            registry: Registry::with_prefix("pushgate"),
        };
        let mut r = Registry::with_prefix("pushgate");
        r.register(
            "dicom_associations_open",
            "DICOM associations being served now",
            m.associations_open.clone(),
        );
        r.register(
            "dicom_associations",
            "DICOM connections accepted (associations asked for)",
            m.associations.clone(),
        );
        r.register(
            "dicom_associations_refused",
            "DICOM associations refused before any transfer, by reason",
            m.associations_refused.clone(),
        );
        r.register(
            "instances_received",
            "Instances stored (C-STORE, drop folder, gateway push)",
            m.instances_received.clone(),
        );
        r.register(
            "received_bytes",
            "Bytes of instances stored",
            m.bytes_received.clone(),
        );
        r.register(
            "instances_refused",
            "Instances refused (C-STORE failure status, unreadable drop-folder file)",
            m.instances_refused.clone(),
        );
        r.register(
            "studies_completed",
            "Studies that became complete (quiet for dicom.stable_after)",
            m.studies_completed.clone(),
        );
        r.register(
            "grants_issued",
            "Grants ever issued, delegated ones included (from the journal)",
            m.grants_issued.clone(),
        );
        r.register(
            "grants",
            "Grants by state now: active (not yet redeemed), bound, expired, revoked",
            m.grants.clone(),
        );
        r.register(
            "accesses",
            "Access decisions by outcome, kind and reason",
            m.accesses.clone(),
        );
        r.register(
            "served_bytes",
            "Bytes served to holders (DICOMweb, downloads)",
            m.bytes_served.clone(),
        );
        r.register(
            "outbox_depth",
            "Gateway pushes waiting to be delivered",
            m.outbox_depth.clone(),
        );
        r.register(
            "outbox_retries",
            "Gateway push attempts that failed and will be retried",
            m.outbox_retries.clone(),
        );
        r.register(
            "forward_depth",
            "Received studies waiting to be forwarded to the local PACS",
            m.forward_depth.clone(),
        );
        r.register(
            "journal_lag",
            "Journal records accepted but not yet written and synced",
            m.journal_lag.clone(),
        );
        r.register(
            "journal_writable",
            "1 if the journal accepts records (0 after a failed fsync)",
            m.journal_writable.clone(),
        );
        r.register(
            "journal_dropped_events",
            "Access events counted instead of journaled because the journal queue was full",
            m.journal_dropped.clone(),
        );
        r.register(
            "accesses_unjournaled",
            "Refusals beyond the journaling rate limit: counted, not journaled one by one",
            m.accesses_unjournaled.clone(),
        );
        r.register(
            "disk_used_ratio",
            "Used fraction of the data directory's file system",
            m.disk_used_ratio.clone(),
        );
        r.register(
            "disk_free_bytes",
            "Free bytes on the data directory's file system (for pushgate)",
            m.disk_free_bytes.clone(),
        );
        r.register(
            "disk_over_high_water",
            "1 while the disk is above the high-water mark (new associations refused)",
            m.disk_over_high_water.clone(),
        );
        r.register(
            "studies_deleted",
            "Studies deleted by retention, by rule",
            m.studies_deleted.clone(),
        );
        r.register(
            "config_reloads",
            "SIGHUP reloads by result (ok, failed)",
            m.reloads.clone(),
        );
        r.register(
            "worker_up",
            "Background workers: 1 while running (or finished by design), 0 once failed",
            m.worker_up.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// Counts one access decision (called by `authz`, where every decision
    /// is made).
    pub fn access(&self, kind: impl serde::Serialize, denied: Option<impl serde::Serialize>) {
        let labels = AccessLabels {
            outcome: if denied.is_some() {
                "denied"
            } else {
                "allowed"
            },
            kind: snake(&kind),
            reason: denied.map(|r| snake(&r)).unwrap_or_default(),
        };
        self.accesses.get_or_create(&labels).inc();
    }

    /// Raises a counter to a total read from elsewhere (never lowers it).
    pub fn raise_to(counter: &Counter, total: u64) {
        let now = counter.get();
        if total > now {
            counter.inc_by(total - now);
        }
    }

    /// The text exposition format (OpenMetrics text, which Prometheus reads).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("cannot render metrics: {e}");
        }
        out
    }
}

/// A unit enum's serde name (`out_of_scope`), as a label value.
fn snake(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "other".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Stand-ins for the journal's access kinds and reasons (metrics sits
    // below the journal): any unit enum with a snake_case serde name.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    enum AccessKind {
        Wado,
        Redeem,
    }

    #[derive(serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    enum DenyReason {
        UnknownCode,
    }

    #[test]
    fn renders_declared_metrics_with_labels() {
        let m = Metrics::new();
        m.instances_received.inc_by(3);
        m.access(AccessKind::Wado, None::<DenyReason>);
        m.access(AccessKind::Redeem, Some(DenyReason::UnknownCode));
        m.grants
            .get_or_create(&StateLabel { state: "bound" })
            .set(2);
        Metrics::raise_to(&m.grants_issued, 5);
        Metrics::raise_to(&m.grants_issued, 4);
        let text = m.render();
        assert!(
            text.contains("# HELP pushgate_instances_received Instances stored"),
            "{text}"
        );
        assert!(
            text.contains("pushgate_instances_received_total 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "pushgate_accesses_total{outcome=\"denied\",kind=\"redeem\",reason=\"unknown_code\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "pushgate_accesses_total{outcome=\"allowed\",kind=\"wado\",reason=\"\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("pushgate_grants{state=\"bound\"} 2"),
            "{text}"
        );
        assert!(text.contains("pushgate_grants_issued_total 5"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
