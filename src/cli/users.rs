//! `pushgate users add|list|disable|reset`: the console's local accounts,
//! through the daemon's admin API (the same operations as the console's
//! Users page, journaled as the admin token).

use std::io::Write;

use serde_json::json;

use super::client::{AdminClient, ClientError};
use crate::config::Config;

/// What `users` does.
#[derive(Debug, Clone)]
pub enum UsersAction {
    Add {
        name: String,
        role: String,
        display_name: Option<String>,
    },
    List,
    Disable(String),
    Reset(String),
}

fn checked(name: &str) -> Result<&str, ClientError> {
    if name.is_empty() || name.contains('/') || name.len() > 64 {
        return Err(ClientError::Http(format!(
            "{name:?} is not an account name"
        )));
    }
    Ok(name)
}

pub async fn users(
    config: &Config,
    action: UsersAction,
    as_json: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let client = AdminClient::new(config)?;
    let answer = match &action {
        UsersAction::Add {
            name,
            role,
            display_name,
        } => {
            client
                .post_json(
                    "/admin/v1/users",
                    &json!({
                        "name": checked(name)?,
                        "role": role,
                        "display_name": display_name.clone().unwrap_or_default(),
                    }),
                )
                .await?
        }
        UsersAction::List => client.get_json("/admin/v1/users").await?,
        UsersAction::Disable(name) => {
            client
                .post_json(
                    &format!("/admin/v1/users/{}/disable", checked(name)?),
                    &json!({}),
                )
                .await?
        }
        UsersAction::Reset(name) => {
            client
                .post_json(
                    &format!("/admin/v1/users/{}/reset", checked(name)?),
                    &json!({}),
                )
                .await?
        }
    };
    let mut answer = answer;
    if let Some(path) = answer["enrol_path"].as_str()
        && config.console.url.is_none()
    {
        // the API saw the loopback client's Host; people reach the console
        // where it listens (with `console.url` the API's link names it)
        answer["enrol_url"] = format!("https://{}{path}", console_host(config)).into();
    }
    if as_json {
        let _ = writeln!(out, "{answer}");
        return Ok(());
    }
    match action {
        UsersAction::Add { .. } | UsersAction::Reset(_) => {
            let _ = writeln!(
                out,
                "Enrolment link for {} (works once, until {}; pass it on in person):\n{}",
                answer["name"].as_str().unwrap_or_default(),
                answer["expires"].as_str().unwrap_or_default(),
                answer["enrol_url"].as_str().unwrap_or_default()
            );
        }
        UsersAction::Disable(name) => {
            let _ = writeln!(out, "Disabled {name}; their sessions have ended.");
        }
        UsersAction::List => {
            let accounts = answer.as_array().cloned().unwrap_or_default();
            if accounts.is_empty() {
                let _ = writeln!(out, "No local accounts.");
            }
            for a in accounts {
                let _ = writeln!(
                    out,
                    "{:<20} {:<6} {:<10} {}",
                    a["name"].as_str().unwrap_or_default(),
                    a["role"].as_str().unwrap_or_default(),
                    a["state"].as_str().unwrap_or_default(),
                    a["display_name"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// Where people reach the console: its listen address, or this machine's
/// name when it listens on every address.
fn console_host(config: &Config) -> String {
    let listen = config.console.listen;
    if listen.ip().is_unspecified() {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let name = name.trim();
        if !name.is_empty() {
            return format!("{name}:{}", listen.port());
        }
    }
    listen.to_string()
}
