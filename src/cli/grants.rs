//! `pushgate share`, `pushgate grants`, `pushgate revoke`.

use std::io::Write;

use serde_json::{Value, json};

use super::{AdminClient, ClientError};
use crate::config::Config;

/// What `pushgate share` was asked.
#[derive(Debug, Default)]
pub struct ShareArgs {
    pub study_uid: Option<String>,
    pub accession: Option<String>,
    /// With `accession`: whose study it must be, and from which AE.
    pub patient_id: Option<String>,
    pub bsn: Option<String>,
    pub source_ae: Option<String>,
    pub series: Vec<String>,
    pub exclude_modalities: Vec<String>,
    pub exclude_sop_classes: Vec<String>,
    pub to_ura: Option<String>,
    pub roles: Vec<String>,
    pub expires: Option<String>,
    pub message: Option<String>,
    pub delegation_depth: Option<u8>,
    /// `referral` or `explicit-consent`.
    pub legal_basis: String,
    pub consent_note: Option<String>,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn when(v: &Value) -> String {
    text(v)
        .chars()
        .take(16)
        .collect::<String>()
        .replace('T', " ")
}

/// Issues a grant and shows exactly what it covers.
pub async fn share(
    config: &Config,
    args: ShareArgs,
    as_json: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let mut body = json!({
        "series": args.series,
        "exclude_modalities": args.exclude_modalities,
        "exclude_sop_classes": args.exclude_sop_classes,
        "roles": args.roles,
        "message": args.message.unwrap_or_default(),
    });
    for (key, value) in [
        ("study_uid", args.study_uid),
        ("accession", args.accession),
        ("patient_id", args.patient_id),
        ("bsn", args.bsn),
        ("source_ae", args.source_ae),
        ("to_ura", args.to_ura),
        ("expires", args.expires),
    ] {
        if let Some(value) = value {
            body[key] = json!(value);
        }
    }
    if let Some(depth) = args.delegation_depth {
        body["delegation_depth"] = json!(depth);
    }
    body["legal_basis"] = match args.legal_basis.replace('-', "_").as_str() {
        "explicit_consent" => {
            json!({ "kind": "explicit_consent", "note": args.consent_note.unwrap_or_default() })
        }
        kind => json!({ "kind": kind }),
    };
    let issued = AdminClient::new(config)?
        .post_json("/admin/v1/grants", &body)
        .await?;
    if as_json {
        let _ = writeln!(out, "{issued}");
        return Ok(());
    }
    let covers = &issued["covers"];
    let _ = writeln!(out, "Shared: grant {}", text(&issued["id"]));
    let _ = writeln!(out, "  Link     {}", text(&issued["url"]));
    let _ = writeln!(out, "  Code     {}", text(&issued["code"]));
    let _ = writeln!(out, "  Expires  {} UTC", when(&issued["expires_at"]));
    let _ = writeln!(out, "  Enter at {}", text(&issued["enter_code_at"]));
    let _ = writeln!(
        out,
        "  Study    {} ({})",
        text(&covers["patient_name"]).replace('^', " "),
        text(&covers["state"])
    );
    let _ = writeln!(
        out,
        "  Covers   {} image(s), modalities {}",
        covers["instances"], covers["modalities"]
    );
    for series in covers["series"].as_array().into_iter().flatten() {
        let mark = if series["included"].as_u64().unwrap_or(0) > 0 {
            "x"
        } else {
            " "
        };
        let _ = writeln!(
            out,
            "    [{mark}] {:<4} {:<32} {}/{} image(s)",
            text(&series["modality"]),
            text(&series["description"]),
            series["included"],
            series["instances"]
        );
    }
    let excluded = &covers["excluded"];
    if excluded["instances"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(
            out,
            "  Left out {} image(s) in {} series (modalities {}, SOP classes {})",
            excluded["instances"],
            excluded["series"],
            excluded["modalities"],
            excluded["sop_classes"]
        );
    }
    Ok(())
}

/// Lists grants: one JSON array, or a table.
pub async fn list(config: &Config, as_json: bool, out: &mut impl Write) -> Result<(), ClientError> {
    let grants = AdminClient::new(config)?
        .get_json("/admin/v1/grants")
        .await?;
    if as_json {
        let _ = writeln!(out, "{grants}");
        return Ok(());
    }
    let rows = grants.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        let _ = writeln!(out, "No grants.");
        return Ok(());
    }
    let _ = writeln!(
        out,
        "{:<22} {:<8} {:<16} {:<18} {:<22} PARENT",
        "ID", "STATUS", "EXPIRES", "RECIPIENT", "HOLDER"
    );
    for g in rows {
        let recipient = match text(&g["recipient"]["kind"]).as_str() {
            "organization" => format!("URA {}", text(&g["recipient"]["ura"])),
            _ => "anyone".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<22} {:<8} {:<16} {:<18} {:<22} {}",
            text(&g["id"]),
            text(&g["status"]),
            when(&g["expires_at"]),
            recipient,
            text(&g["holder"]).chars().take(22).collect::<String>(),
            text(&g["parent"]),
        );
    }
    Ok(())
}

/// Revokes a grant and everything passed on from it.
pub async fn revoke(
    config: &Config,
    id: &str,
    reason: &str,
    as_json: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ClientError::Http(format!("{id:?} is not a grant id")));
    }
    let answer = AdminClient::new(config)?
        .post_json(
            &format!("/admin/v1/grants/{id}/revoke"),
            &json!({ "reason": reason }),
        )
        .await?;
    if as_json {
        let _ = writeln!(out, "{answer}");
    } else {
        let cascade = answer["cascade"].as_array().map_or(0, Vec::len);
        let _ = writeln!(
            out,
            "Revoked {id}, and {cascade} grant(s) passed on from it."
        );
    }
    Ok(())
}
