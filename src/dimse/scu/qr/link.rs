//! One query/retrieve association from our side: DIMSE messages sent and
//! received as presentation data values, every wait bounded by the
//! timeout, every message bounded in size.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use dicom_ul::ClientAssociationOptions;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, UserVariableItem};

use crate::dimse::scu::{
    Assoc, PacsAddress, ScuError, abort_source, establish, lost, pdu_name, wire, write_pdu,
};

/// Command sets are small; a peer sending more is not speaking DIMSE.
const MAX_COMMAND: usize = 64 * 1024;

pub(super) struct Link {
    assoc: Assoc,
    timeout: Duration,
    /// The PACS, for messages.
    pub pacs: String,
    /// PDVs of the last P-DATA-TF not yet consumed.
    pending: VecDeque<PDataValue>,
    /// Largest PDV value the PACS takes.
    chunk: usize,
    /// Accepted presentation contexts: id → (abstract syntax, transfer syntax).
    pub contexts: HashMap<u8, (String, String)>,
}

impl Link {
    /// Connects and negotiates; `service` names what was proposed, for
    /// the error when the PACS accepted none of it.
    pub async fn open(
        pacs: &PacsAddress,
        options: ClientAssociationOptions<'_>,
        timeout: Duration,
        service: &'static str,
    ) -> Result<Link, ScuError> {
        let Some(assoc) = establish(options, pacs, timeout).await? else {
            return Err(ScuError::NotAccepted {
                pacs: pacs.to_string(),
                service,
            });
        };
        let contexts = assoc
            .presentation_contexts()
            .iter()
            .map(|pc| {
                let trim = |s: &str| s.trim_end_matches(['\0', ' ']).to_string();
                (
                    pc.id,
                    (trim(&pc.abstract_syntax), trim(&pc.transfer_syntax)),
                )
            })
            .collect();
        let chunk = wire::max_pdv_value(assoc.acceptor_max_pdu_length()).min(256 * 1024);
        Ok(Link {
            assoc,
            timeout,
            pacs: pacs.to_string(),
            pending: VecDeque::new(),
            chunk,
            contexts,
        })
    }

    /// What the PACS said in its A-ASSOCIATE-AC besides the contexts.
    pub fn user_variables(&self) -> &[UserVariableItem] {
        self.assoc.user_variables()
    }

    pub fn peer(&mut self) -> String {
        self.assoc
            .inner_stream()
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| self.pacs.clone())
    }

    /// The accepted context for `abstract_syntax` and its transfer syntax.
    pub fn context(
        &self,
        abstract_syntax: &str,
        service: &'static str,
    ) -> Result<(u8, String), ScuError> {
        let mut ids: Vec<_> = self
            .contexts
            .iter()
            .filter(|(_, (a, _))| a == abstract_syntax)
            .collect();
        ids.sort_by_key(|(id, _)| **id);
        ids.first()
            .map(|(id, (_, ts))| (**id, ts.clone()))
            .ok_or_else(|| ScuError::NotAccepted {
                pacs: self.pacs.clone(),
                service,
            })
    }

    /// Sends a command set and, if given, its data set, each in PDVs the
    /// PACS takes.
    pub async fn send(
        &mut self,
        context: u8,
        command: &[u8],
        data: Option<&[u8]>,
        during: &str,
    ) -> Result<(), ScuError> {
        self.send_value(context, true, command, during).await?;
        if let Some(data) = data {
            self.send_value(context, false, data, during).await?;
        }
        Ok(())
    }

    async fn send_value(
        &mut self,
        context: u8,
        command: bool,
        value: &[u8],
        during: &str,
    ) -> Result<(), ScuError> {
        // an empty value is still one (last) PDV
        let mut offset = 0;
        loop {
            let end = (offset + self.chunk).min(value.len());
            let mut pdu = vec![0u8; wire::PDATA_HEADER];
            pdu.extend_from_slice(&value[offset..end]);
            wire::pdata_header(&mut pdu, context, command, end == value.len());
            write_pdu(
                &mut self.assoc,
                &pdu,
                self.timeout,
                || during.to_string(),
                || during.to_string(),
            )
            .await?;
            if end == value.len() {
                return Ok(());
            }
            offset = end;
        }
    }

    /// The next presentation data value, within the timeout.
    pub async fn next_pdv(&mut self, during: &str) -> Result<PDataValue, ScuError> {
        loop {
            if let Some(pdv) = self.pending.pop_front() {
                return Ok(pdv);
            }
            let pdu = match tokio::time::timeout(self.timeout, self.assoc.receive()).await {
                Err(_) => {
                    return Err(ScuError::Timeout {
                        during: during.to_string(),
                        after: self.timeout,
                    });
                }
                Ok(Err(e)) => return Err(lost(during, &e)),
                Ok(Ok(pdu)) => pdu,
            };
            match pdu {
                Pdu::PData { data } => self.pending.extend(data),
                Pdu::AbortRQ { source } => {
                    return Err(ScuError::Aborted {
                        by: abort_source(&source),
                        during: during.to_string(),
                    });
                }
                other => {
                    return Err(ScuError::Protocol {
                        during: during.to_string(),
                        reason: format!("unexpected {}", pdu_name(&other)),
                    });
                }
            }
        }
    }

    /// The next whole command set and the context it came on.
    pub async fn command(&mut self, during: &str) -> Result<(u8, Vec<u8>), ScuError> {
        let mut bytes = Vec::new();
        let mut on: Option<u8> = None;
        loop {
            let pdv = self.next_pdv(during).await?;
            let protocol = |reason: &str| ScuError::Protocol {
                during: during.to_string(),
                reason: reason.to_string(),
            };
            if pdv.value_type != PDataValueType::Command {
                return Err(protocol("a data fragment where a command was due"));
            }
            if on.is_some_and(|c| c != pdv.presentation_context_id) {
                return Err(protocol(
                    "command fragments on different presentation contexts",
                ));
            }
            if !self.contexts.contains_key(&pdv.presentation_context_id) {
                return Err(protocol("a command on a presentation context not accepted"));
            }
            on = Some(pdv.presentation_context_id);
            if bytes.len() + pdv.data.len() > MAX_COMMAND {
                return Err(protocol("a command set larger than 64 KiB"));
            }
            bytes.extend_from_slice(&pdv.data);
            if pdv.is_last {
                return Ok((pdv.presentation_context_id, bytes));
            }
        }
    }

    /// The data set following a command on `context`, whole if it is at
    /// most `limit` bytes; a larger one is read to its end and dropped
    /// (`Ok(Err)` saying so).
    pub async fn dataset(
        &mut self,
        context: u8,
        limit: usize,
        during: &str,
    ) -> Result<Result<Vec<u8>, String>, ScuError> {
        let mut bytes = Vec::new();
        let mut too_large = false;
        loop {
            let pdv = self.expect_data(context, during).await?;
            if !too_large && bytes.len() + pdv.data.len() > limit {
                too_large = true;
                bytes = Vec::new();
            }
            if !too_large {
                bytes.extend_from_slice(&pdv.data);
            }
            if pdv.is_last {
                return Ok(match too_large {
                    true => Err(format!("identifier larger than {limit} bytes")),
                    false => Ok(bytes),
                });
            }
        }
    }

    /// The next data fragment, which must be on `context`.
    pub async fn expect_data(&mut self, context: u8, during: &str) -> Result<PDataValue, ScuError> {
        let pdv = self.next_pdv(during).await?;
        if pdv.value_type != PDataValueType::Data || pdv.presentation_context_id != context {
            return Err(ScuError::Protocol {
                during: during.to_string(),
                reason: "a command or another context's data where a data set was due".into(),
            });
        }
        Ok(pdv)
    }

    /// Ends the association: released when it is intact (a complete
    /// exchange, a failure status, nothing sent yet), aborted otherwise.
    pub async fn close<T>(self, outcome: Result<T, ScuError>) -> Result<T, ScuError> {
        let intact = matches!(
            &outcome,
            Ok(_)
                | Err(ScuError::Status { .. }
                    | ScuError::Identifier(_)
                    | ScuError::NotAccepted { .. })
        );
        let pacs = self.pacs.clone();
        if intact {
            match tokio::time::timeout(self.timeout, self.assoc.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(%pacs, "release failed: {}", crate::base::error_chain(&e))
                }
                Err(_) => tracing::warn!(%pacs, "no A-RELEASE-RP within {:?}", self.timeout),
            }
        } else {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.assoc.abort()).await;
        }
        outcome
    }
}
