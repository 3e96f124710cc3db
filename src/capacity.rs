//! Disk space of the data directory: the high-water mark above which intake
//! stops (`[capacity]`). A full disk met half-way through an instance costs
//! the sender a retry and us a partial file; refusing at the door costs
//! nothing and tells the sender to come back later. The journal and the
//! index need room to keep working, too, which is why the mark sits below
//! 100%.
//!
//! The filesystem is asked (statvfs) at most once per [`RECHECK`]: callers
//! ask per association and per instance, and the answer changes slowly.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::CapacityConfig;
use crate::worker::{Progress, Stop, Worker, WorkerError};

/// How long a statvfs answer is trusted.
pub const RECHECK: Duration = Duration::from_secs(1);

/// The data directory's filesystem as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DiskStatus {
    pub total_bytes: u64,
    /// Available to pushgate (statvfs `f_bavail`, what `df` calls Avail).
    pub free_bytes: u64,
    /// Used space as `df` computes it: used / (used + available).
    pub used_percent: f64,
    /// `capacity.high_water`; 100: no limit.
    pub high_water_percent: f64,
    /// `capacity.min_free`; 0: no floor.
    pub min_free_bytes: u64,
    /// Above the mark, or below the floor: intake is refused.
    pub over_high_water: bool,
}

/// A handle on the data directory's disk space; cheap to clone, shared by
/// the DICOM listener, the drop folder and (for readiness and metrics)
/// whoever else wants to know.
#[derive(Clone)]
pub struct Disk {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None`: no limit and nothing to measure (tests, tools).
    path: Option<PathBuf>,
    limits: CapacityConfig,
    last: Mutex<Option<(Instant, DiskStatus)>>,
}

impl Disk {
    /// Watches the filesystem holding `data_dir`.
    pub fn new(data_dir: &Path, limits: &CapacityConfig) -> Disk {
        Disk {
            inner: Arc::new(Inner {
                path: Some(data_dir.to_path_buf()),
                limits: limits.clone(),
                last: Mutex::new(None),
            }),
        }
    }

    /// Never over the mark; reports zeros.
    pub fn unlimited() -> Disk {
        Disk {
            inner: Arc::new(Inner {
                path: None,
                limits: CapacityConfig {
                    high_water_percent: 100.0,
                    min_free_bytes: 0,
                },
                last: Mutex::new(None),
            }),
        }
    }

    /// Whether intake should be refused now (cached for [`RECHECK`]).
    pub fn over_high_water(&self) -> bool {
        self.status().over_high_water
    }

    /// The disk as last measured (at most [`RECHECK`] old). The operator
    /// hears once when the mark is crossed, either way.
    pub fn status(&self) -> DiskStatus {
        let limits = &self.inner.limits;
        let Some(path) = &self.inner.path else {
            return assess(0, 0, 0, limits);
        };
        let mut last = self.inner.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, status)) = *last
            && at.elapsed() < RECHECK
        {
            return status;
        }
        let previous = last.map(|(_, s)| s);
        let status = match statvfs(path) {
            Ok((total, available, used)) => assess(total, available, used, limits),
            Err(e) => {
                // Refusing all intake because a stat failed would be worse
                // than the failure: keep the last answer, and say so.
                tracing::warn!(path = %path.display(), "cannot measure free disk space: {e}");
                previous.unwrap_or_else(|| assess(0, 0, 0, limits))
            }
        };
        report_crossing(previous, &status, path);
        *last = Some((Instant::now(), status));
        status
    }
}

/// Measures every `every`, so that the operator hears of a crossing
/// (either way) when it happens, not when the next sender happens to call.
/// A failed measurement keeps the last answer (see `Disk::status`): never a
/// failure.
pub struct DiskWatcher {
    disk: Disk,
    every: Duration,
}

impl DiskWatcher {
    pub fn new(disk: Disk, every: Duration) -> DiskWatcher {
        DiskWatcher { disk, every }
    }
}

impl Worker for DiskWatcher {
    fn name(&self) -> &'static str {
        "capacity"
    }

    async fn work(&mut self, _stop: &Stop) -> Result<Progress, WorkerError> {
        let measured = self.disk.clone();
        tokio::task::spawn_blocking(move || measured.status())
            .await
            .map_err(|e| WorkerError::new(format!("measuring the disk: {e}")))?;
        Ok(Progress::Idle)
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.every).await;
    }
}

fn report_crossing(previous: Option<DiskStatus>, now: &DiskStatus, path: &Path) {
    let was_over = previous.is_some_and(|p| p.over_high_water);
    if now.over_high_water && !was_over {
        tracing::error!(
            data_dir = %path.display(),
            used_percent = format_args!("{:.1}", now.used_percent),
            free_bytes = now.free_bytes,
            high_water_percent = now.high_water_percent,
            min_free_bytes = now.min_free_bytes,
            "disk above the high-water mark (capacity.high_water / capacity.min_free): \
             refusing new associations and drop-folder imports until space is freed"
        );
    } else if was_over && !now.over_high_water {
        tracing::info!(
            used_percent = format_args!("{:.1}", now.used_percent),
            free_bytes = now.free_bytes,
            "disk back below the high-water mark: accepting studies again"
        );
    }
}

/// The verdict for a filesystem of `total` bytes with `available` free to
/// us and `used` in use.
fn assess(total: u64, available: u64, used: u64, limits: &CapacityConfig) -> DiskStatus {
    let denominator = used.saturating_add(available);
    let used_percent = if denominator == 0 {
        0.0
    } else {
        used as f64 * 100.0 / denominator as f64
    };
    let measured = total > 0;
    DiskStatus {
        total_bytes: total,
        free_bytes: available,
        used_percent,
        high_water_percent: limits.high_water_percent,
        min_free_bytes: limits.min_free_bytes,
        over_high_water: measured
            && ((limits.high_water_percent < 100.0 && used_percent >= limits.high_water_percent)
                || available < limits.min_free_bytes),
    }
}

/// (total, available, used) bytes of the filesystem holding `path`.
// statvfs's field types differ between targets (u32 on some 32-bit ones):
// the casts are needed there even where they are not here.
#[allow(clippy::unnecessary_cast)]
fn statvfs(path: &Path) -> io::Result<(u64, u64, u64)> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` points
    // to writable memory of the right type for the duration of the call.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the struct (and it was
    // zeroed before).
    let stat = unsafe { stat.assume_init() };
    let unit = stat.f_frsize as u64;
    let total = (stat.f_blocks as u64).saturating_mul(unit);
    let free = (stat.f_bfree as u64).saturating_mul(unit);
    let available = (stat.f_bavail as u64).saturating_mul(unit);
    Ok((total, available, total.saturating_sub(free)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(percent: f64, min_free: u64) -> CapacityConfig {
        CapacityConfig {
            high_water_percent: percent,
            min_free_bytes: min_free,
        }
    }

    #[test]
    fn the_mark_and_the_floor_each_stop_intake() {
        let gib = 1u64 << 30;
        // 100 GiB disk, 89 used, 11 available
        let s = assess(100 * gib, 11 * gib, 89 * gib, &limits(90.0, gib));
        assert!(!s.over_high_water, "{s:?}");
        assert!((s.used_percent - 89.0).abs() < 0.01);
        let s = assess(100 * gib, 10 * gib, 90 * gib, &limits(90.0, gib));
        assert!(s.over_high_water, "at the mark is over it");
        let s = assess(100 * gib, gib / 2, 20 * gib, &limits(90.0, gib));
        assert!(s.over_high_water, "below the floor");
        let s = assess(100 * gib, 0, 100 * gib, &limits(100.0, 0));
        assert!(!s.over_high_water, "100% and no floor: no limit");
    }

    #[test]
    fn reserved_blocks_count_as_df_counts_them() {
        // ext4 keeps 5% for root: used / (used + available), not / total
        let s = assess(100, 5, 90, &limits(95.0, 0));
        assert!((s.used_percent - 94.736).abs() < 0.01, "{s:?}");
    }

    #[test]
    fn a_real_filesystem_is_measured_and_unlimited_never_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let status = Disk::new(dir.path(), &limits(100.0, 0)).status();
        assert!(status.total_bytes > 0 && status.free_bytes <= status.total_bytes);
        assert!(!status.over_high_water);
        let nothing_fits = Disk::new(dir.path(), &limits(100.0, u64::MAX));
        assert!(nothing_fits.over_high_water());
        assert!(!Disk::unlimited().over_high_water());
    }
}
