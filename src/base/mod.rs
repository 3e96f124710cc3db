//! The value types every module shares, validated once where they enter
//! (config, DICOM, HTTP) so that no unchecked text travels further. Plain
//! values: no I/O, and nothing here imports another pushgate module.

mod ae_title;
mod grant_id;
mod modality;
mod pacs;
mod percent;
mod timestamp;
mod uid;
mod ura;

pub(crate) use ae_title::valid_ae;
pub use ae_title::{AeTitle, AeTitleError};
pub use grant_id::GrantId;
pub use modality::modality_code;
pub use pacs::{AddressError, PacsAddress};
pub use percent::percent_encode;
pub use timestamp::Timestamp;
pub use uid::{Uid, UidError};
pub use ura::{Ura, UraError};

/// An error with all its causes, for messages that must say what happened.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
