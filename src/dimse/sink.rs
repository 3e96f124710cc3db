//! Where the data set of a C-STORE-RQ goes while it arrives, for the SCP
//! and for the C-STORE sub-operations of our C-GET alike: a temporary Part
//! 10 file, handed to intake once complete. The caller answers only after
//! [`Sink::finish`], when the instance is durable and indexed (or refused).

use std::io::Write;
use std::time::Instant;

use super::command::Request;
use super::status::{self, Status};
use crate::ingest::{Declared, IngestError, Ingestor, Received, write_part10_header};
use crate::store::{Source, TempFile, Uid};

pub(crate) enum Sink {
    File {
        temp: TempFile,
        dataset_offset: u64,
    },
    /// The request is already refused; its data is read and dropped.
    Discard(Status),
}

/// Runs blocking file work in place: on a multi-threaded runtime (the
/// daemon's) without stalling the other tasks of this worker thread; on a
/// current-thread runtime, where `block_in_place` would panic, directly.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Sink {
    /// Decides, before any data arrives, whether the data set can be kept,
    /// and if so starts its Part 10 file. `abstract_syntax` is the one
    /// negotiated on the presentation context the request came on.
    pub(crate) fn open(
        ingestor: &Ingestor,
        request: &Request,
        abstract_syntax: &str,
        transfer_syntax: &str,
        calling_ae: &str,
    ) -> Sink {
        if request.sop_class != abstract_syntax {
            return Sink::Discard(Status::failure(
                status::SOP_CLASS_NOT_SUPPORTED,
                format!(
                    "SOP Class {} not negotiated on this presentation context",
                    request.sop_class
                ),
            ));
        }
        if let Err(e) = Uid::parse(&request.sop_instance) {
            return Sink::Discard(Status::failure(
                status::INVALID_SOP_INSTANCE,
                format!("Affected SOP Instance UID {e}"),
            ));
        }
        // The association began below the mark; intake stops mid-way too,
        // before the disk is really full.
        if ingestor.disk().over_high_water() {
            return Sink::Discard(Status::failure(
                status::OUT_OF_RESOURCES,
                "disk above the high-water mark (capacity.high_water): try again later",
            ));
        }
        let opened = blocking(|| {
            let mut temp = ingestor.files().create_temp()?;
            let offset = write_part10_header(
                &mut temp,
                &request.sop_class,
                &request.sop_instance,
                transfer_syntax,
                calling_ae,
            )?;
            Ok::<_, std::io::Error>((temp, offset))
        });
        match opened {
            Ok((temp, dataset_offset)) => Sink::File {
                temp,
                dataset_offset,
            },
            Err(e) => Sink::Discard(Status::from(&IngestError::io(e))),
        }
    }

    /// Appends one data fragment; a write error turns the sink into a
    /// refusal (the rest of the data set is still read).
    pub(crate) fn write(&mut self, data: &[u8]) {
        if let Sink::File { temp, .. } = self
            && let Err(e) = blocking(|| temp.write_all(data))
        {
            *self = Sink::Discard(Status::from(&IngestError::io(e)));
        }
    }

    /// Hands the complete file to intake: `Ok(size)` once it is stored,
    /// or the status to refuse the C-STORE-RQ with.
    pub(crate) async fn finish(
        self,
        ingestor: &Ingestor,
        request: &Request,
        transfer_syntax: String,
        source: Source,
    ) -> Result<u64, Status> {
        let (temp, dataset_offset) = match self {
            Sink::Discard(status) => return Err(status),
            Sink::File {
                temp,
                dataset_offset,
            } => (temp, dataset_offset),
        };
        let size = temp.len();
        let ingestor = ingestor.clone();
        let received = Received {
            temp,
            dataset_offset,
            transfer_syntax,
            declared: Some(Declared {
                sop_class: request.sop_class.clone(),
                sop_instance: request.sop_instance.clone(),
            }),
            source,
        };
        let started = Instant::now();
        match tokio::task::spawn_blocking(move || ingestor.ingest(received)).await {
            Ok(Ok(stored)) => {
                tracing::debug!(
                    instance = %stored.key,
                    size,
                    replaced = stored.outcome.replaced,
                    micros = started.elapsed().as_micros() as u64,
                    "stored"
                );
                Ok(size)
            }
            Ok(Err(e)) => Err(Status::from(&e)),
            Err(e) => Err(Status::failure(
                status::OUT_OF_RESOURCES_WRITE,
                format!("internal error: {e}"),
            )),
        }
    }
}
