//! `pushgate studies` and `pushgate reindex`.

use std::io::Write;

use super::{AdminClient, ClientError};
use crate::config::Config;
use crate::ingest::reindex::{self, Report};
use crate::store::StoreError;

/// Prints what has arrived: one JSON array with `--json`, else a table.
pub async fn print_studies(
    config: &Config,
    as_json: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let studies = AdminClient::new(config)?
        .get_json("/admin/v1/studies")
        .await?;
    if as_json {
        let _ = writeln!(out, "{studies}");
        return Ok(());
    }
    let rows = studies.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        let _ = writeln!(out, "No studies.");
        return Ok(());
    }
    let _ = writeln!(
        out,
        "{:<10} {:<24} {:<12} {:<9} {:>6} {:>7} {:>9}  {:<8}  STUDY INSTANCE UID",
        "DATE", "PATIENT", "PATIENT ID", "MODALITY", "SERIES", "IMAGES", "SIZE", "STATE"
    );
    for s in rows {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
        let modalities = s["modalities"]
            .as_array()
            .map(|m| m.iter().map(text).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<10} {:<24} {:<12} {:<9} {:>6} {:>7} {:>9}  {:<8}  {}",
            format_date(&text(&s["study_date"])),
            clip(&text(&s["patient"]["name"]).replace('^', " "), 24),
            clip(&text(&s["patient"]["id"]), 12),
            clip(&modalities, 9),
            s["num_series"].as_u64().unwrap_or(0),
            s["num_instances"].as_u64().unwrap_or(0),
            human_bytes(s["bytes"].as_u64().unwrap_or(0)),
            text(&s["state"]),
            text(&s["study_uid"]),
        );
        let from = &s["received_from"];
        if from.is_object() {
            let mut line = format!(
                "{:<10} pushed by {} (URA {})",
                "",
                text(&from["from_name"]),
                text(&from["from_ura"])
            );
            if text(&from["priority"]) == "spoed" {
                line.push_str(", SPOED");
            }
            let message = text(&from["message"]);
            if !message.is_empty() {
                line.push_str(&format!(": \"{}\"", clip(&message, 80)));
            }
            let _ = writeln!(out, "{line}");
        }
    }
    Ok(())
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

fn format_date(da: &str) -> String {
    if da.len() == 8 && da.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &da[..4], &da[4..6], &da[6..])
    } else {
        da.to_string()
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Rebuilds the index from the files and the grants from the journal; the
/// daemon must be stopped.
pub fn reindex(config: &Config) -> Result<Report, StoreError> {
    let journal = config.journal_dir();
    // A study whose deletion was begun must not come back with the rebuilt
    // index; the markers stay for the daemon to clear.
    let pending = |ingestor: &crate::ingest::Ingestor| {
        crate::retention::finish_pending(&config.data_dir, ingestor, true)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    reindex::rebuild(config, pending, |grants| {
        crate::authz::Authz::rebuild(grants, &journal)
            .map(|grants| format!("{grants} grant(s) rebuilt from the journal"))
            .map_err(|e| format!("grants cannot be rebuilt from the journal: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(262_144_000), "262.1 MB");
        assert_eq!(format_date("20261124"), "2026-11-24");
        assert_eq!(clip("Jansen Anna Maria", 8), "Jansen …");
    }
}
