//! What the host's monitoring asks: `/healthz` (the process answers),
//! `/readyz` (it can do its work: every background worker running, store
//! and journal writable, disk below the high-water mark) and `/metrics` (Prometheus text). Answered on
//! loopback only: counts of grants and accesses are nobody else's business,
//! and a scraper on another host goes through the host's own agent.

use std::io::Write;
use std::sync::Arc;

use hyper::StatusCode;

use super::access::blocking;
use super::{App, Body, WebError, full};
use crate::metrics::{METRICS, Metrics, StateLabel};

/// Reads the state-like values from their owners, then renders.
pub async fn metrics(app: &Arc<App>) -> hyper::Response<Body> {
    let app = app.clone();
    let text = blocking(move || {
        sample(&app);
        Ok::<_, WebError>(METRICS.render())
    })
    .await
    .unwrap_or_default();
    full(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        text,
    )
}

/// Blocking: reads sled.
fn sample(app: &App) {
    let counts = app.authz.counts();
    Metrics::raise_to(&METRICS.grants_issued, counts.issued);
    for (state, n) in [
        ("active", counts.active),
        ("bound", counts.bound),
        ("expired", counts.expired),
        ("revoked", counts.revoked),
    ] {
        METRICS
            .grants
            .get_or_create(&StateLabel { state })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    match app.relay.outbox.list() {
        Ok(items) => {
            let open = items.iter().filter(|i| i.is_open()).count();
            METRICS.outbox_depth.set(open as i64);
        }
        Err(e) => tracing::warn!("metrics: cannot read the outbox: {e}"),
    }
    if let Some(forwarder) = &app.relay.forwarder {
        match forwarder.status() {
            Ok(items) => {
                let pending = items
                    .iter()
                    .filter(|i| i.state == crate::relay::forward::ForwardState::Pending)
                    .count();
                METRICS.forward_depth.set(pending as i64);
            }
            Err(e) => tracing::warn!("metrics: cannot read the forwarding queue: {e}"),
        }
    }
    let disk = app.relay.ingestor.disk().status();
    METRICS.disk_used_ratio.set(disk.used_percent / 100.0);
    METRICS
        .disk_free_bytes
        .set(i64::try_from(disk.free_bytes).unwrap_or(i64::MAX));
    METRICS
        .disk_over_high_water
        .set(i64::from(disk.over_high_water));
    let journal = app.authz.journal();
    METRICS
        .journal_lag
        .set(i64::try_from(journal.lag()).unwrap_or(i64::MAX));
    METRICS
        .journal_writable
        .set(i64::from(journal.is_writable()));
}

/// 200 when everything a transfer needs is usable, else 503 naming what
/// is not.
pub async fn readyz(app: &Arc<App>) -> hyper::Response<Body> {
    let app = app.clone();
    let problems = blocking(move || Ok::<_, WebError>(not_ready(&app)))
        .await
        .unwrap_or_else(|e| vec![format!("check failed: {e}")]);
    if problems.is_empty() {
        full(StatusCode::OK, "text/plain", "ready\n")
    } else {
        let mut text = String::new();
        for p in problems {
            text.push_str("not ready: ");
            text.push_str(&p);
            text.push('\n');
        }
        full(StatusCode::SERVICE_UNAVAILABLE, "text/plain", text)
    }
}

fn not_ready(app: &App) -> Vec<String> {
    // A worker that failed first: the daemon is on its way out (it drains
    // and exits non-zero for systemd to restart it).
    let mut problems: Vec<String> = app
        .workers
        .failed()
        .into_iter()
        .map(|(name, why)| format!("worker {name} failed: {why}"))
        .collect();
    // The same path an instance takes: a temporary file in the store,
    // written and synced (then dropped, which removes it).
    let probe = app.files.create_temp().and_then(|mut temp| {
        temp.write_all(b"readyz")?;
        temp.flush()?;
        temp.file().sync_data()
    });
    if let Err(e) = probe {
        problems.push(format!("store not writable: {e}"));
    }
    let disk = app.relay.ingestor.disk().status();
    if disk.over_high_water {
        problems.push(format!(
            "disk above the high-water mark: {:.1} % used, {} MB free (capacity.high_water {} %, capacity.min_free {} MB); new associations are refused",
            disk.used_percent,
            disk.free_bytes / 1_000_000,
            disk.high_water_percent,
            disk.min_free_bytes / 1_000_000
        ));
    }
    if !app.authz.journal().is_writable() {
        problems.push("journal not writable (a write or fsync failed; see the log)".to_string());
    }
    problems
}
