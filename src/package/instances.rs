//! The stored instances of a study as members of a file-set: what the
//! download and the relay package both lay out.

use crate::store::{FileStore, Index, InstanceKey, InstanceRecord, StoreError};

use super::{FileSetInstance, directory_metadata};

/// Each instance with its file and the metadata its directory record
/// needs. An instance whose metadata is gone or unreadable is left out (as
/// `/metadata` does) rather than failing the whole file-set. Blocking.
pub fn file_set_instances(
    index: &dyn Index,
    files: &FileStore,
    instances: &[(InstanceKey, InstanceRecord)],
) -> Result<Vec<FileSetInstance>, StoreError> {
    let mut members = Vec::with_capacity(instances.len());
    for (key, record) in instances {
        let Some(metadata) = index
            .metadata(key)?
            .and_then(|bytes| directory_metadata(&bytes).ok())
        else {
            tracing::warn!(sop = %key.sop, "no readable metadata: left out of the file-set");
            continue;
        };
        members.push(FileSetInstance {
            path: files.path_of(key),
            size: record.size,
            crc32: record.crc32,
            modified: record.received_at,
            transfer_syntax: record.transfer_syntax.clone(),
            metadata,
        });
    }
    Ok(members)
}
