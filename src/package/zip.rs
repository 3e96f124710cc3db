//! A stored (uncompressed) ZIP archive whose every byte is known before the
//! first is sent: sizes and CRC-32s come with the entries, so the layout is
//! a pure function of the entry list. That is what lets the download answer
//! with `Content-Length` up front and serve any `Range` (a resumed download)
//! without writing the archive anywhere.
//!
//! Format: APPNOTE.TXT 6.3.10. Local headers carry CRC and sizes (no data
//! descriptors); ZIP64 records appear only where a field would overflow
//! (4.3.9, 4.4.1.4, 4.5.3), or everywhere when forced (for tests).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::PackageError;
use crate::store::Timestamp;

/// Largest buffer a write uses to copy file data: memory stays bounded
/// whatever the size of the archive.
const CHUNK: usize = 256 * 1024;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
const ZIP64_END_OF_CENTRAL_DIRECTORY: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EXTRA: u16 = 0x0001;

const LOCAL_HEADER_LEN: u64 = 30;
const CENTRAL_HEADER_LEN: u64 = 46;
const END_LEN: u64 = 22;
const ZIP64_END_LEN: u64 = 56;
const ZIP64_LOCATOR_LEN: u64 = 20;

const U16_MAX: u64 = 0xFFFF;
const U32_MAX: u64 = 0xFFFF_FFFF;
/// Version needed to extract: 2.0 for stored files, 4.5 for ZIP64 (4.4.3.2).
const VERSION_DEFAULT: u16 = 20;
const VERSION_ZIP64: u16 = 45;
/// "Version made by" high byte: UNIX, so the external attributes are a mode.
const MADE_BY_UNIX: u16 = 3 << 8;
/// Regular file, rw-r--r--.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_644 << 16;
/// General purpose bit 11: name is UTF-8.
const FLAG_UTF8: u16 = 1 << 11;

/// Where an entry's bytes come from.
#[derive(Clone, Debug)]
pub enum Content {
    /// Read when written; its length must still be `Entry::size` then.
    File {
        path: PathBuf,
    },
    Bytes(Bytes),
}

#[derive(Clone, Debug)]
pub struct Entry {
    /// Path inside the archive, '/'-separated, relative.
    pub name: String,
    pub content: Content,
    pub size: u64,
    pub crc32: u32,
    pub modified: Timestamp,
}

impl Entry {
    /// An entry for bytes in memory (size and CRC computed here).
    pub fn bytes(name: impl Into<String>, data: impl Into<Bytes>, modified: Timestamp) -> Entry {
        let data = data.into();
        Entry {
            name: name.into(),
            size: data.len() as u64,
            crc32: crc32fast::hash(&data),
            content: Content::Bytes(data),
            modified,
        }
    }
}

/// Where an archive is written: any file or buffer, or a sink that takes
/// whole chunks without copying them (a streamed response).
pub trait ArchiveOut: Write {
    /// Takes `chunk` whole; by default, writes it.
    fn write_chunk(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        self.write_all(&chunk)
    }
}

impl ArchiveOut for Vec<u8> {}
impl ArchiveOut for File {}

/// CRC-32 of a whole file, read in bounded chunks.
pub fn crc32_of_file(path: &Path) -> io::Result<u32> {
    let mut file = File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; CHUNK];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(hasher.finalize()),
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// An entry with its place in the archive.
#[derive(Debug)]
struct Placed {
    entry: Entry,
    /// Offset of its local header.
    offset: u64,
    local_len: u64,
    /// Offset of its central directory header.
    central_offset: u64,
    central_len: u64,
    zip64: Zip64Fields,
    time: u16,
    date: u16,
}

/// Which fields of an entry move into its ZIP64 extra field.
#[derive(Clone, Copy, Debug, Default)]
struct Zip64Fields {
    sizes: bool,
    offset: bool,
}

impl Zip64Fields {
    fn any(self) -> bool {
        self.sizes || self.offset
    }

    /// Length of the extra field in the local header: both sizes, always
    /// together there (4.5.3).
    fn local_extra_len(self) -> u64 {
        if self.sizes { 4 + 16 } else { 0 }
    }

    fn central_extra_len(self) -> u64 {
        let fields = 2 * u64::from(self.sizes) + u64::from(self.offset);
        if fields == 0 { 0 } else { 4 + 8 * fields }
    }
}

/// An immutable archive layout. Cheap to keep; bytes are produced on
/// demand by [`Archive::write_range`].
#[derive(Debug)]
pub struct Archive {
    entries: Vec<Placed>,
    central_start: u64,
    end_start: u64,
    /// ZIP64 end of central directory, its locator (if needed) and the end
    /// of central directory record.
    end: Vec<u8>,
    len: u64,
}

/// One contiguous run of archive bytes.
enum Part<'a> {
    Local(&'a Placed),
    Data(&'a Placed),
    Central(&'a Placed),
    End,
}

impl Archive {
    pub fn new(entries: Vec<Entry>) -> Result<Archive, PackageError> {
        Archive::with_zip64(entries, false)
    }

    /// `force`: write ZIP64 records for every entry and the end of the
    /// archive even where the classic fields would do (to test readers).
    pub fn with_zip64(entries: Vec<Entry>, force: bool) -> Result<Archive, PackageError> {
        let mut names = HashSet::with_capacity(entries.len());
        for entry in &entries {
            check_name(&entry.name)?;
            if !names.insert(entry.name.as_str()) {
                return Err(PackageError::DuplicateName(entry.name.clone()));
            }
        }
        drop(names);

        let mut placed = Vec::with_capacity(entries.len());
        let mut offset = 0u64;
        for entry in entries {
            let zip64 = Zip64Fields {
                sizes: force || entry.size >= U32_MAX,
                offset: force || offset >= U32_MAX,
            };
            let local_len = LOCAL_HEADER_LEN + entry.name.len() as u64 + zip64.local_extra_len();
            let central_len =
                CENTRAL_HEADER_LEN + entry.name.len() as u64 + zip64.central_extra_len();
            let (time, date) = dos_date_time(entry.modified);
            let next = offset
                .checked_add(local_len)
                .and_then(|o| o.checked_add(entry.size))
                .ok_or(PackageError::TooLarge)?;
            placed.push(Placed {
                entry,
                offset,
                local_len,
                central_offset: 0,
                central_len,
                zip64,
                time,
                date,
            });
            offset = next;
        }
        let central_start = offset;
        for p in &mut placed {
            p.central_offset = offset;
            offset = offset
                .checked_add(p.central_len)
                .ok_or(PackageError::TooLarge)?;
        }
        let end_start = offset;
        let end = end_records(&placed, central_start, end_start, force);
        let len = end_start + end.len() as u64;
        Ok(Archive {
            entries: placed,
            central_start,
            end_start,
            end,
            len,
        })
    }

    /// Total length in bytes, exact.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        // an archive always has its end record
        false
    }

    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// SHA-256 of the central directory and end records: names, sizes,
    /// CRCs, times and offsets of every entry. Two archives with the same
    /// fingerprint have the same bytes (as long as the CRCs are true), so
    /// it serves as a strong HTTP validator (ETag, If-Range).
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        let mut header = Vec::with_capacity(256);
        for p in &self.entries {
            header.clear();
            central_header(p, &mut header);
            hasher.update(&header);
        }
        hasher.update(&self.end);
        hasher.finalize().into()
    }

    /// Writes bytes `[range.start, range.end)` of the archive to `out`,
    /// reading files in chunks of at most 256 KiB. Blocking: callers run it
    /// on a blocking thread. Fails if a file's size changed since the layout
    /// was made, or (when an entry's data is written whole) if its CRC-32 no
    /// longer matches: a corrupt archive is never completed silently.
    /// Returns the number of bytes written.
    pub fn write_range(
        &self,
        range: Range<u64>,
        out: &mut dyn ArchiveOut,
    ) -> Result<u64, PackageError> {
        if range.start > range.end || range.end > self.len {
            return Err(PackageError::RangeOutOfBounds {
                start: range.start,
                end: range.end,
                len: self.len,
            });
        }
        let mut header = Vec::with_capacity(256);
        let mut pos = range.start;
        while pos < range.end {
            let (start, part) = self.part_at(pos);
            let from = pos - start;
            let part_len = match &part {
                Part::Local(p) => p.local_len,
                Part::Data(p) => p.entry.size,
                Part::Central(p) => p.central_len,
                Part::End => self.end.len() as u64,
            };
            let to = part_len.min(range.end - start);
            match part {
                Part::Local(p) => {
                    header.clear();
                    local_header(p, &mut header);
                    out.write_all(&header[from as usize..to as usize])?;
                }
                Part::Central(p) => {
                    header.clear();
                    central_header(p, &mut header);
                    out.write_all(&header[from as usize..to as usize])?;
                }
                Part::End => out.write_all(&self.end[from as usize..to as usize])?,
                Part::Data(p) => write_data(p, from..to, out)?,
            }
            pos = start + to;
        }
        Ok(range.end - range.start)
    }

    /// The part holding byte `pos` (< len) and where that part starts.
    fn part_at(&self, pos: u64) -> (u64, Part<'_>) {
        if pos >= self.end_start {
            return (self.end_start, Part::End);
        }
        if pos >= self.central_start {
            let i = self
                .entries
                .partition_point(|p| p.central_offset <= pos)
                .saturating_sub(1);
            let p = &self.entries[i];
            return (p.central_offset, Part::Central(p));
        }
        // the last entry starting at or before pos; empty data parts are
        // never chosen because the next entry starts where they would
        let i = self
            .entries
            .partition_point(|p| p.offset <= pos)
            .saturating_sub(1);
        let p = &self.entries[i];
        if pos < p.offset + p.local_len {
            (p.offset, Part::Local(p))
        } else {
            (p.offset + p.local_len, Part::Data(p))
        }
    }
}

fn check_name(name: &str) -> Result<(), PackageError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > U16_MAX as usize {
        Some("longer than 65535 bytes")
    } else if name.starts_with('/') {
        Some("absolute")
    } else if name.contains('\\') || name.contains('\0') {
        Some("contains a backslash or NUL")
    } else if name
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        Some("has an empty, '.' or '..' component")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(PackageError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

fn write_data(p: &Placed, range: Range<u64>, out: &mut dyn ArchiveOut) -> Result<(), PackageError> {
    let name = &p.entry.name;
    let whole = range.start == 0 && range.end == p.entry.size;
    match &p.entry.content {
        Content::Bytes(data) => {
            if data.len() as u64 != p.entry.size {
                return Err(PackageError::SizeChanged {
                    name: name.clone(),
                    expected: p.entry.size,
                    found: data.len() as u64,
                });
            }
            out.write_all(&data[range.start as usize..range.end as usize])?;
        }
        Content::File { path } => {
            let read_error = |source| PackageError::Read {
                path: path.clone(),
                source,
            };
            let mut file = File::open(path).map_err(read_error)?;
            let found = file.metadata().map_err(read_error)?.len();
            if found != p.entry.size {
                return Err(PackageError::SizeChanged {
                    name: name.clone(),
                    expected: p.entry.size,
                    found,
                });
            }
            file.seek(SeekFrom::Start(range.start))
                .map_err(read_error)?;
            let mut hasher = crc32fast::Hasher::new();
            let mut remaining = range.end - range.start;
            while remaining > 0 {
                let want = remaining.min(CHUNK as u64);
                // a fresh chunk each time, handed over whole: no copy on
                // the way to a streamed response
                let mut chunk = Vec::with_capacity(want as usize);
                (&mut file)
                    .take(want)
                    .read_to_end(&mut chunk)
                    .map_err(read_error)?;
                if chunk.len() as u64 != want {
                    return Err(PackageError::SizeChanged {
                        name: name.clone(),
                        expected: p.entry.size,
                        found: range.end - remaining + chunk.len() as u64,
                    });
                }
                if whole {
                    hasher.update(&chunk);
                }
                remaining -= want;
                out.write_chunk(chunk)?;
            }
            if whole {
                let found = hasher.finalize();
                if found != p.entry.crc32 {
                    return Err(PackageError::ContentChanged {
                        name: name.clone(),
                        expected: p.entry.crc32,
                        found,
                    });
                }
            }
        }
    }
    Ok(())
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// The value of a classic 32-bit field: the marker 0xFFFFFFFF when the
/// value lives in the ZIP64 extra field.
fn field32(value: u64, in_zip64: bool) -> u32 {
    if in_zip64 { u32::MAX } else { value as u32 }
}

fn version_needed(p: &Placed) -> u16 {
    if p.zip64.any() {
        VERSION_ZIP64
    } else {
        VERSION_DEFAULT
    }
}

fn flags(p: &Placed) -> u16 {
    if p.entry.name.is_ascii() {
        0
    } else {
        FLAG_UTF8
    }
}

fn local_header(p: &Placed, out: &mut Vec<u8>) {
    let size = p.entry.size;
    put32(out, LOCAL_HEADER);
    put16(out, version_needed(p));
    put16(out, flags(p));
    put16(out, 0); // stored
    put16(out, p.time);
    put16(out, p.date);
    put32(out, p.entry.crc32);
    put32(out, field32(size, p.zip64.sizes)); // compressed
    put32(out, field32(size, p.zip64.sizes)); // uncompressed
    put16(out, p.entry.name.len() as u16);
    put16(out, p.zip64.local_extra_len() as u16);
    out.extend_from_slice(p.entry.name.as_bytes());
    if p.zip64.sizes {
        put16(out, ZIP64_EXTRA);
        put16(out, 16);
        put64(out, size); // original size
        put64(out, size); // compressed size
    }
}

fn central_header(p: &Placed, out: &mut Vec<u8>) {
    let size = p.entry.size;
    let version = version_needed(p);
    put32(out, CENTRAL_HEADER);
    put16(out, MADE_BY_UNIX | version);
    put16(out, version);
    put16(out, flags(p));
    put16(out, 0); // stored
    put16(out, p.time);
    put16(out, p.date);
    put32(out, p.entry.crc32);
    put32(out, field32(size, p.zip64.sizes));
    put32(out, field32(size, p.zip64.sizes));
    put16(out, p.entry.name.len() as u16);
    put16(out, p.zip64.central_extra_len() as u16);
    put16(out, 0); // comment length
    put16(out, 0); // disk number start
    put16(out, 0); // internal attributes
    put32(out, EXTERNAL_ATTRIBUTES);
    put32(out, field32(p.offset, p.zip64.offset));
    out.extend_from_slice(p.entry.name.as_bytes());
    if p.zip64.any() {
        // fields in the fixed order of 4.5.3, only those marked above
        put16(out, ZIP64_EXTRA);
        put16(out, (p.zip64.central_extra_len() - 4) as u16);
        if p.zip64.sizes {
            put64(out, size);
            put64(out, size);
        }
        if p.zip64.offset {
            put64(out, p.offset);
        }
    }
}

fn end_records(entries: &[Placed], central_start: u64, end_start: u64, force: bool) -> Vec<u8> {
    let count = entries.len() as u64;
    let central_len = end_start - central_start;
    let count_overflows = count >= U16_MAX;
    let len_overflows = central_len >= U32_MAX;
    let start_overflows = central_start >= U32_MAX;
    let zip64 = force
        || count_overflows
        || len_overflows
        || start_overflows
        || entries.iter().any(|p| p.zip64.any());
    let mut out = Vec::with_capacity((ZIP64_END_LEN + ZIP64_LOCATOR_LEN + END_LEN) as usize);
    if zip64 {
        put32(&mut out, ZIP64_END_OF_CENTRAL_DIRECTORY);
        put64(&mut out, ZIP64_END_LEN - 12); // size of the rest of the record
        put16(&mut out, MADE_BY_UNIX | VERSION_ZIP64);
        put16(&mut out, VERSION_ZIP64);
        put32(&mut out, 0); // this disk
        put32(&mut out, 0); // disk with the central directory
        put64(&mut out, count);
        put64(&mut out, count);
        put64(&mut out, central_len);
        put64(&mut out, central_start);

        put32(&mut out, ZIP64_LOCATOR);
        put32(&mut out, 0); // disk with the ZIP64 end record
        put64(&mut out, end_start); // where that record starts
        put32(&mut out, 1); // total disks
    }
    let count16 = if count_overflows {
        u16::MAX
    } else {
        count as u16
    };
    put32(&mut out, END_OF_CENTRAL_DIRECTORY);
    put16(&mut out, 0);
    put16(&mut out, 0);
    put16(&mut out, count16);
    put16(&mut out, count16);
    put32(&mut out, field32(central_len, len_overflows));
    put32(&mut out, field32(central_start, start_overflows));
    put16(&mut out, 0); // comment length
    out
}

/// MS-DOS date and time (2-second resolution) of a UTC timestamp, clamped
/// to the range the format can hold (1980 to 2107).
fn dos_date_time(t: Timestamp) -> (u16, u16) {
    let secs = t.0 / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    if year < 1980 {
        return (0, (1 << 5) | 1); // 1980-01-01 00:00:00
    }
    if year > 2107 {
        return ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31);
    }
    let (hour, minute, second) = (rem / 3600, rem / 60 % 60, rem % 60);
    let time = (hour << 11) | (minute << 5) | (second / 2);
    let date = ((year as u64 - 1980) << 9) | (u64::from(month) << 5) | u64::from(day);
    (time as u16, date as u16)
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01
/// (H. Hinnant's algorithm).
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn dos_times_are_utc_and_clamped() {
        // 2024-03-12 09:41:07 UTC
        let t = Timestamp(1_710_236_467_000);
        let (time, date) = dos_date_time(t);
        assert_eq!(date >> 9, 2024 - 1980);
        assert_eq!((date >> 5) & 0xF, 3);
        assert_eq!(date & 0x1F, 12);
        assert_eq!(time >> 11, 9);
        assert_eq!((time >> 5) & 0x3F, 41);
        assert_eq!(time & 0x1F, 3);
        assert_eq!(dos_date_time(Timestamp(0)), (0, (1 << 5) | 1));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_783), (2024, 3, 1));
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "/abs", "a//b", "a/../b", "a\\b", "./a"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("DICOM/PA000000/IM000000").unwrap();
        let dup = vec![
            Entry::bytes("A", &b"1"[..], Timestamp(0)),
            Entry::bytes("A", &b"2"[..], Timestamp(0)),
        ];
        assert!(matches!(
            Archive::new(dup),
            Err(PackageError::DuplicateName(_))
        ));
    }
}
