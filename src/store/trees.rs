//! Every sled tree in the database beside the index, by name: the one list
//! of the relations pushgate keeps. The names are the on-disk format (an
//! existing data_dir opens only if they stay as they are); a new relation
//! adds its name here, a trait in `relations`, and its sled side in
//! `sled_trees`.

/// The index (`index.rs`): a view rebuilt from the files by `reindex`.
pub const ACCESSIONS: &str = "accessions";
pub const STUDIES: &str = "studies";
pub const INSTANCES: &str = "instances";
pub const LOCATIONS: &str = "locations";
pub const METADATA: &str = "metadata";
pub const PATIENTS: &str = "patients";

/// Grant state mirrored from the journal (`GrantStore`).
pub const GRANTS: &str = "grants";
/// The number of the last journal record applied to `grants`.
pub const GRANTS_META: &str = "grants_meta";

/// Packages received from peers, by `<sender URA>/<package ID>` (`InboxStore`).
pub const RELAY_RECEIVED: &str = "relay_received";
/// Where each study received from a peer came from, by study UID.
pub const RELAY_ORIGINS: &str = "relay_origins";

/// The one durable work queue (`QueueStore`): pushes and forwards, by
/// `<kind>/<id>`.
pub const QUEUE: &str = "queue";
/// The outbox's and the forwarder's trees before the one queue: read once
/// on open, their entries moved into `QUEUE` (store/queue.rs `adopt`).
pub const RELAY_OUTBOX: &str = "relay_outbox";
pub const FORWARD: &str = "forward";

/// Every tree, for the check that nothing opens one not listed here.
pub const ALL: &[&str] = &[
    ACCESSIONS,
    STUDIES,
    INSTANCES,
    LOCATIONS,
    METADATA,
    PATIENTS,
    GRANTS,
    GRANTS_META,
    RELAY_RECEIVED,
    RELAY_ORIGINS,
    QUEUE,
    RELAY_OUTBOX,
    FORWARD,
];
