//! The receipt a receiving gateway signs over the package's hash: the
//! sender's proof of delivery, kept in its outbox and journal.

use sequoia_openpgp::Cert;
use serde::{Deserialize, Serialize};

use super::RelayError;
use super::manifest::Party;
use super::openpgp::{self, OwnKey};
use super::outbox::SignedReceipt;
use crate::store::Timestamp;

pub const FORMAT: &str = "pushgate-receipt/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub format: String,
    pub package_id: String,
    /// SHA-256 (hex) of the OpenPGP message as received.
    pub package_sha256: String,
    pub size: u64,
    pub received_at: Timestamp,
    pub receiver: Party,
    pub sender_ura: String,
    pub studies: Vec<String>,
    pub instances: u32,
}

pub fn sign(own: &OwnKey, receipt: &Receipt) -> Result<SignedReceipt, RelayError> {
    let text = serde_json::to_string(receipt)
        .map_err(|e| RelayError::Internal(format!("receipt: {e}")))?;
    let signature = openpgp::sign_detached(own, text.as_bytes())?;
    Ok(SignedReceipt {
        receipt: text,
        signature,
    })
}

/// Checks a receipt from `peer` for the package we sent: signed by the
/// peer's key, over our package's hash.
pub fn verify(
    peer: &Cert,
    signed: &SignedReceipt,
    package_id: &str,
    sha256: &str,
) -> Result<Receipt, String> {
    openpgp::verify_detached(peer, signed.receipt.as_bytes(), &signed.signature)
        .map_err(|e| format!("receipt signature: {e}"))?;
    let receipt: Receipt = serde_json::from_str(&signed.receipt)
        .map_err(|e| format!("receipt is not a pushgate receipt: {e}"))?;
    if receipt.format != FORMAT {
        return Err(format!("receipt format {:?} unknown", receipt.format));
    }
    if receipt.package_id != package_id || !receipt.package_sha256.eq_ignore_ascii_case(sha256) {
        return Err(format!(
            "receipt is for package {} ({}), not ours ({package_id}, {sha256})",
            receipt.package_id, receipt.package_sha256
        ));
    }
    Ok(receipt)
}
