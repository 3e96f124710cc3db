//! `pushgate send`, `pushgate outbox`, `pushgate queue` (through the admin
//! API) and `pushgate keys` (the key file itself: it works with the daemon
//! stopped).

use std::io::Write;

use super::{AdminClient, ClientError};
use crate::config::Config;
use crate::relay::openpgp::{KeyAlgorithm, OwnKey};
use crate::relay::{RelayError, user_id};
use crate::tls;

pub struct SendArgs {
    pub study_uid: String,
    pub to_ura: String,
    pub message: Option<String>,
    pub priority: Option<String>,
}

pub async fn send(
    config: &Config,
    args: SendArgs,
    as_json: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let body = serde_json::json!({
        "study": args.study_uid,
        "to_ura": args.to_ura,
        "message": args.message.unwrap_or_default(),
        "priority": args.priority.unwrap_or_else(|| "routine".into()),
    });
    let item = AdminClient::new(config)?
        .post_json("/admin/v1/outbox", &body)
        .await?;
    if as_json {
        let _ = writeln!(out, "{item}");
    } else {
        let _ = writeln!(
            out,
            "queued {} for {} (URA {}), {}; state: {}\n  follow it with: pushgate outbox",
            item["id"].as_str().unwrap_or(""),
            item["to_name"].as_str().unwrap_or(""),
            item["to_ura"].as_str().unwrap_or(""),
            item["priority"].as_str().unwrap_or(""),
            item["state"].as_str().unwrap_or(""),
        );
    }
    Ok(())
}

pub async fn outbox(
    config: &Config,
    as_json: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let items = AdminClient::new(config)?
        .get_json("/admin/v1/outbox")
        .await?;
    if as_json {
        let _ = writeln!(out, "{items}");
        return Ok(());
    }
    let rows = items.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        let _ = writeln!(out, "The outbox is empty.");
        return Ok(());
    }
    let _ = writeln!(
        out,
        "{:<32} {:<8} {:<8} {:<10} {:>8}  {:<24}  STUDY / DETAIL",
        "ID", "STATE", "PRIORITY", "TO URA", "ATTEMPTS", "CREATED"
    );
    for i in rows {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
        let detail = match i["state"].as_str() {
            Some("sent") => format!("delivered {}", text(&i["sent_at"])),
            Some("failed") => format!("failed: {}", text(&i["last_error"])),
            Some("cancelled") => format!("cancelled: {}", text(&i["last_error"])),
            _ if !text(&i["last_error"]).is_empty() => format!(
                "retry at {}: {}",
                text(&i["next_attempt"]),
                text(&i["last_error"])
            ),
            Some("waiting") => "waiting for the study to be complete".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<32} {:<8} {:<8} {:<10} {:>8}  {:<24}  {}\n{:>77}{}",
            text(&i["id"]),
            text(&i["state"]),
            text(&i["priority"]),
            text(&i["to_ura"]),
            i["attempts"].as_u64().unwrap_or(0),
            text(&i["created_at"]),
            text(&i["study"]),
            "",
            detail,
        );
    }
    Ok(())
}

/// `pushgate queue`: the one work queue (every kind of job), newest first,
/// with each entry's attempts, next attempt and last error.
pub async fn queue(
    config: &Config,
    as_json: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let rows = AdminClient::new(config)?
        .get_json("/admin/v1/queue")
        .await?;
    if as_json {
        let _ = writeln!(out, "{rows}");
        return Ok(());
    }
    let rows = rows.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        let _ = writeln!(out, "The queue is empty.");
        return Ok(());
    }
    let _ = writeln!(
        out,
        "{:<8} {:<9} {:>8}  {:<24}  {:<20}  ID / DETAIL",
        "KIND", "STATE", "ATTEMPTS", "CREATED", "TARGET"
    );
    for r in rows {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
        let error = text(&r["last_error"]);
        let detail = match (r["state"].as_str(), r["next_attempt"].as_str()) {
            (Some("pending" | "waiting"), Some(next)) if !error.is_empty() => {
                format!("next attempt {next}; last error: {error}")
            }
            (Some("pending" | "waiting"), Some(next)) => format!("next attempt {next}"),
            (_, _) if !error.is_empty() => format!("last error: {error}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<8} {:<9} {:>8}  {:<24}  {:<20}  {}\n{:>10}{}",
            text(&r["kind"]),
            text(&r["state"]),
            r["attempts"].as_u64().unwrap_or(0),
            text(&r["created_at"]),
            text(&r["target"]),
            text(&r["id"]),
            "",
            detail,
        );
    }
    Ok(())
}

/// `pushgate keys init`: makes the gateway's key; refuses to replace one.
pub fn keys_init(
    config: &Config,
    algorithm: KeyAlgorithm,
    out: &mut impl Write,
) -> Result<(), RelayError> {
    let path = &config.relay.key;
    if path.exists() {
        let key = OwnKey::load(path)?;
        return Err(RelayError::Internal(format!(
            "{} holds a key already (fingerprint {}); move it away first to make a new one",
            path.display(),
            key.fingerprint()
        )));
    }
    let (key, _) = OwnKey::load_or_create(path, &user_id(config), algorithm)?;
    let _ = writeln!(
        out,
        "created {}\nfingerprint {}",
        path.display(),
        key.fingerprint()
    );
    Ok(())
}

/// `pushgate keys show`: what a peer needs for its address book entry.
pub fn keys_show(config: &Config, armored: bool, out: &mut impl Write) -> Result<(), RelayError> {
    let key = OwnKey::load(&config.relay.key)?;
    if armored {
        let _ = write!(out, "{}", key.public_armored());
        return Ok(());
    }
    let _ = writeln!(
        out,
        "OpenPGP key  {}\nfingerprint  {}",
        config.relay.key.display(),
        key.fingerprint()
    );
    let (cert, _) = tls::cert_paths(config);
    match tls::load_certs(&cert) {
        Ok(certs) if !certs.is_empty() => {
            match crate::relay::book::spki_pin_base64(certs[0].as_ref()) {
                Ok(pin) => {
                    let _ = writeln!(
                        out,
                        "TLS cert     {}\ntls_spki_sha256 = \"{pin}\"",
                        cert.display(),
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "TLS cert     {}: {e}", cert.display());
                }
            }
        }
        _ => {
            let _ = writeln!(
                out,
                "TLS cert     {} (not made yet: start the daemon once)",
                cert.display()
            );
        }
    }
    let _ = writeln!(
        out,
        "public key   pushgate keys show --armor  (or GET /.well-known/pushgate/openpgp.asc)"
    );
    Ok(())
}
