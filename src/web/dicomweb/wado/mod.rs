//! WADO-RS (PS3.18 §10.4): everything that retrieves from a covered study.
//! `dicomweb::dispatch` hands each resource to its handler here:
//!
//! - [`retrieve`]: instances as multipart/related, and their metadata;
//! - [`frames`]: frames, stored or decoded;
//! - [`bulkdata`]: bulk data by byte range;
//! - [`rendered`]: rendered and thumbnail images;
//! - [`single`]: the single-part answers frames and bulk data share.
//!
//! What every DICOMweb service shares (media types, multipart bodies,
//! the resource paths) lives beside this folder, in `dicomweb/`.

pub(super) mod bulkdata;
pub(super) mod frames;
pub(super) mod rendered;
pub(super) mod retrieve;
mod single;
