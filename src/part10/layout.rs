//! Where the large values of a stored Part 10 file lie.

use serde::{Deserialize, Serialize};

/// Where the large values of an instance lie in its file, so that frames
/// and bulk data can be served without parsing the file again.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkLayout {
    pub pixel: Option<PixelLayout>,
    /// Other large binary values, by tag path (e.g. `00420011` or
    /// `0040A730.0.00420011`).
    pub values: Vec<BulkValue>,
    /// A deflated data set has no byte ranges to point at.
    pub deflated: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PixelLayout {
    /// Native pixel data: one value at `offset` of `length` bytes.
    Native { offset: u64, length: u64 },
    /// Encapsulated pixel data: the basic offset table and every fragment
    /// (file offset of its value, length).
    Encapsulated {
        offset_table: Vec<u32>,
        fragments: Vec<(u64, u32)>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BulkValue {
    pub path: String,
    pub vr: String,
    pub offset: u64,
    pub length: u64,
}
