//! `POST /relay/v1/inbox`: a peer gateway delivers a package. Who it is
//! comes from its TLS client certificate, matched against the address book;
//! the body goes to the inbox as it arrives (a blocking reader fed by a
//! channel), and the answer is the signed receipt or the reason for refusal.

use std::io::{self, Read};
use std::sync::Arc;

use super::inbound::Inbound;
use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::{Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::access::blocking;
use super::request::Connection;
use super::{App, Body, Refusal, WebError, json};
use crate::journal::{Event, Relay as RelayEvent};
use crate::relay::inbox::{self, InboxError};

/// Chunks of the body in flight between the connection and the inbox.
const IN_FLIGHT: usize = 16;
/// An upload that sends nothing for this long is given up.
const STALL: std::time::Duration = std::time::Duration::from_secs(120);

/// The body as a blocking `Read`.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.current.has_remaining() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Feeds the body to the inbox; if the inbox stops early (a refusal), the
/// rest is read and dropped so that the sender gets to read the answer.
async fn pump(mut body: Inbound, tx: mpsc::Sender<io::Result<Bytes>>) {
    let mut listening = true;
    loop {
        // a sender that stops sending must not hold a receiving slot
        let frame = match tokio::time::timeout(STALL, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(_) => {
                let _ = tx
                    .send(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no data from the sender for {} s", STALL.as_secs()),
                    )))
                    .await;
                return;
            }
        };
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data()
                    && listening
                    && tx.send(Ok(data)).await.is_err()
                {
                    listening = false;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(io::Error::other(e))).await;
                return;
            }
        }
    }
}

/// Why the inbox is not even asked (its own refusals are `InboxError`s;
/// both get their status in `error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum NotReceiving {
    #[error("unknown sender: no TLS client certificate was presented")]
    NoCertificate,
    #[error("unknown sender: the TLS client certificate matches no gateway in the address book")]
    UnknownSender,
    /// The same high-water mark as DICOM intake: the sender's outbox keeps
    /// the package and retries, which beats running out of disk
    /// mid-package.
    #[error("disk above the high-water mark; try again later")]
    DiskFull,
    #[error("receiving other packages; try again shortly")]
    Receiving,
}

pub(super) async fn inbox(
    app: &Arc<App>,
    connection: &Connection,
    request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    let relay = app.relay.clone();
    let from = connection.peer.to_string();
    // Refusals are journaled, and logged, within the bound all refusals
    // share: anyone can POST here, and must not fill the disk by it.
    let refused = |sender_ura: Option<String>, package: Option<String>, reason: String| {
        let event = Event::Relay(RelayEvent::Refused {
            from: from.clone(),
            sender_ura: sender_ura.clone(),
            package,
            reason: reason.clone(),
        });
        if app.authz.journal_refusal(connection.peer.ip(), event) {
            tracing::warn!(peer = %from, from_ura = ?sender_ura, "relay inbox: refused: {reason}");
        }
    };
    let book = relay.book.current();
    let Some(gateway) = book.by_client_chain(&connection.chain).cloned() else {
        let why = if connection.chain.is_empty() {
            NotReceiving::NoCertificate
        } else {
            NotReceiving::UnknownSender
        };
        refused(None, None, why.to_string());
        return Err(why.into());
    };
    if relay.ingestor.disk().over_high_water() {
        return Err(NotReceiving::DiskFull.into());
    }
    let Ok(permit) = relay.receiving.clone().try_acquire_owned() else {
        return Err(NotReceiving::Receiving.into());
    };
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    tokio::spawn(pump(request.into_body(), tx));
    let reader = ChannelReader {
        rx,
        current: Bytes::new(),
    };
    let (r, g) = (relay.clone(), gateway.clone());
    let received = blocking(move || {
        let _permit = permit;
        Ok::<_, WebError>(inbox::receive(&r, &g, reader))
    })
    .await?;
    match received {
        Ok(signed) => Ok(json(StatusCode::OK, &signed)),
        Err(e) => {
            let package = match &e {
                InboxError::Replay { package, .. } => Some(package.clone()),
                _ => None,
            };
            refused(Some(gateway.ura.clone()), package, e.to_string());
            Err(e.into())
        }
    }
}
