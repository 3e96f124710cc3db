//! `pushgate pacs find`: asks the local PACS (`[pacs] address`) with
//! C-FIND, at study level (or series level for one study), and prints what
//! it has. Read-only and without the daemon: only the configuration is
//! needed.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde_json::{Value, json};

use crate::config::Config;
use crate::dimse::scu::qr;
use crate::ingest::attrs::text;

/// At most this many studies in one answer; more: the PACS is asked to stop
/// (C-CANCEL) and the answer says so.
pub const MAX_MATCHES: usize = 500;
const TIMEOUT: Duration = Duration::from_secs(30);

/// What `pushgate pacs find` was asked (its command-line options). Empty:
/// not a condition.
#[derive(Debug, Default, clap::Args)]
pub struct FindArgs {
    #[arg(long = "patient-id", value_name = "ID")]
    pub patient_id: Option<String>,
    /// Patient's Name as DICOM writes it, e.g. "Jansen^A*" (`*` any run,
    /// `?` one character).
    #[arg(long, value_name = "PATTERN")]
    pub name: Option<String>,
    #[arg(long, value_name = "NUMBER")]
    pub accession: Option<String>,
    /// YYYYMMDD, or a range YYYYMMDD-YYYYMMDD (either end open).
    #[arg(long, value_name = "RANGE")]
    pub date: Option<String>,
    #[arg(long, value_name = "MODALITY")]
    pub modality: Option<String>,
    /// The series of this study instead.
    #[arg(long = "series-of", value_name = "STUDY_UID")]
    pub series_of: Option<String>,
}

fn number(obj: &InMemDicomObject, tag: Tag) -> Value {
    text(obj, tag)
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or(Value::Null)
}

/// A date range as DICOM matches it: digits and at most one `-`.
fn checked_date(date: &str) -> anyhow::Result<String> {
    let date = date.trim().replace(['.', '/'], "");
    let ok = date.split('-').count() <= 2
        && date
            .split('-')
            .all(|d| d.is_empty() || (d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())))
        && date != "-";
    if !ok {
        bail!("--date {date:?}: YYYYMMDD, YYYYMMDD-YYYYMMDD, -YYYYMMDD or YYYYMMDD-");
    }
    Ok(date)
}

fn study_row(m: &InMemDicomObject) -> Value {
    json!({
        "study_uid": text(m, tags::STUDY_INSTANCE_UID),
        "patient_name": text(m, tags::PATIENT_NAME),
        "patient_id": text(m, tags::PATIENT_ID),
        "birth_date": text(m, tags::PATIENT_BIRTH_DATE),
        "study_date": text(m, tags::STUDY_DATE),
        "accession": text(m, tags::ACCESSION_NUMBER),
        "modalities": text(m, tags::MODALITIES_IN_STUDY).split('\\').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "description": text(m, tags::STUDY_DESCRIPTION),
        "series": number(m, tags::NUMBER_OF_STUDY_RELATED_SERIES),
        "instances": number(m, tags::NUMBER_OF_STUDY_RELATED_INSTANCES),
    })
}

fn series_row(m: &InMemDicomObject) -> Value {
    json!({
        "series_uid": text(m, tags::SERIES_INSTANCE_UID),
        "modality": text(m, tags::MODALITY),
        "number": text(m, tags::SERIES_NUMBER),
        "description": text(m, tags::SERIES_DESCRIPTION),
        "instances": number(m, tags::NUMBER_OF_SERIES_RELATED_INSTANCES),
    })
}

/// Asks the PACS and prints one JSON array (`--json`) or a table.
pub async fn find(
    config: &Config,
    args: FindArgs,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let Some(pacs) = &config.pacs.address else {
        bail!("no PACS configured: set [pacs] address = \"AE@host:port\"");
    };
    let date = args.date.as_deref().map(checked_date).transpose()?;
    let given = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_string();
    let (identifier, series_level) = match &args.series_of {
        Some(study) => {
            let modality = given(&args.modality);
            let keys: Vec<(Tag, &str)> = vec![
                (tags::SERIES_INSTANCE_UID, ""),
                (tags::MODALITY, modality.as_str()),
                (tags::SERIES_NUMBER, ""),
                (tags::SERIES_DESCRIPTION, ""),
                (tags::NUMBER_OF_SERIES_RELATED_INSTANCES, ""),
            ];
            (qr::series_query(study.trim(), &keys)?, true)
        }
        None => {
            let (id, name, acc, modality) = (
                given(&args.patient_id),
                given(&args.name),
                given(&args.accession),
                given(&args.modality),
            );
            if [&id, &name, &acc, &modality].iter().all(|v| v.is_empty()) && date.is_none() {
                bail!(
                    "say what to look for: --patient-id, --name, --accession, --date or --modality"
                );
            }
            let date = date.unwrap_or_default();
            let keys: Vec<(Tag, &str)> = vec![
                (tags::STUDY_INSTANCE_UID, ""),
                (tags::PATIENT_NAME, name.as_str()),
                (tags::PATIENT_ID, id.as_str()),
                (tags::PATIENT_BIRTH_DATE, ""),
                (tags::STUDY_DATE, date.as_str()),
                (tags::ACCESSION_NUMBER, acc.as_str()),
                (tags::MODALITIES_IN_STUDY, modality.as_str()),
                (tags::STUDY_DESCRIPTION, ""),
                (tags::NUMBER_OF_STUDY_RELATED_SERIES, ""),
                (tags::NUMBER_OF_STUDY_RELATED_INSTANCES, ""),
            ];
            (qr::study_query(&keys)?, false)
        }
    };
    let found = qr::find(
        pacs,
        config.pacs.calling_ae.as_str(),
        &identifier,
        MAX_MATCHES,
        TIMEOUT,
    )
    .await
    .with_context(|| format!("asking {pacs}"))?;
    for reason in &found.malformed {
        eprintln!("pushgate: skipped an unreadable answer from {pacs}: {reason}");
    }
    if found.truncated {
        eprintln!(
            "pushgate: more than {MAX_MATCHES} matches; only the first {MAX_MATCHES} shown: narrow the search"
        );
    }
    let rows: Vec<Value> = found
        .matches
        .iter()
        .map(|m| {
            if series_level {
                series_row(m)
            } else {
                study_row(m)
            }
        })
        .collect();
    if as_json {
        let _ = writeln!(out, "{}", Value::Array(rows));
        return Ok(());
    }
    if rows.is_empty() {
        let _ = writeln!(out, "nothing found at {pacs}");
        return Ok(());
    }
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let n = |k: &str| {
            r[k].as_u64()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into())
        };
        if series_level {
            let _ = writeln!(
                out,
                "{:<4} {:<6} {:>5}  {:<40} {}",
                s("number"),
                s("modality"),
                n("instances"),
                s("description"),
                s("series_uid")
            );
        } else {
            let modalities: Vec<&str> = r["modalities"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{}  {:<28} {:<12} {:<16} {:<8} {:>3} series {:>5} images  {}\n    {}",
                s("study_date"),
                s("patient_name"),
                s("patient_id"),
                s("accession"),
                modalities.join("/"),
                n("series"),
                n("instances"),
                s("description"),
                s("study_uid")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::checked_date;

    #[test]
    fn date_ranges_are_checked_before_asking() {
        for ok in [
            "20240101",
            "20240101-20240630",
            "-20240630",
            "20240101-",
            "2024.01.01",
        ] {
            assert!(checked_date(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2024",
            "-",
            "20240101-20240630-20241231",
            "2024010a",
            "20240101*",
        ] {
            assert!(checked_date(bad).is_err(), "{bad}");
        }
    }
}
