//! A 3-D Shepp-Logan-like head phantom in patient coordinates (millimetres,
//! DICOM LPS: +x patient left, +y posterior, +z head), plus a deterministic
//! noise source.
//!
//! The ellipsoids follow the classic 3-D Shepp-Logan layout (Kak & Slaney),
//! with an added scalp layer and a small frontal lesion, but instead of the
//! additive intensities each point takes the tissue of the innermost
//! ellipsoid containing it; tissues map to Hounsfield units for CT and to
//! T2-weighted signal for MR.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tissue {
    Air,
    Scalp,
    Bone,
    WhiteMatter,
    GreyMatter,
    Csf,
    Nodule,
    Lesion,
}

/// Millimetres per phantom unit: the skull is 0.69 x 0.92 units, i.e. a
/// head of roughly 150 x 200 mm.
pub const MM_PER_UNIT: f64 = 110.0;

struct Ellipsoid {
    centre: [f64; 3],
    radii: [f64; 3],
    /// Rotation about the z axis, degrees.
    phi: f64,
    tissue: Tissue,
}

const fn e(centre: [f64; 3], radii: [f64; 3], phi: f64, tissue: Tissue) -> Ellipsoid {
    Ellipsoid {
        centre,
        radii,
        phi,
        tissue,
    }
}

/// Phantom units, y pointing anterior (as in the textbook phantom). Later
/// entries win where ellipsoids overlap.
const HEAD: [Ellipsoid; 12] = [
    e([0.0, 0.0, 0.0], [0.72, 0.95, 0.84], 0.0, Tissue::Scalp),
    e([0.0, 0.0, 0.0], [0.69, 0.92, 0.81], 0.0, Tissue::Bone),
    e(
        [0.0, -0.0184, 0.0],
        [0.6624, 0.874, 0.78],
        0.0,
        Tissue::WhiteMatter,
    ),
    e(
        [0.0, 0.35, -0.15],
        [0.21, 0.25, 0.41],
        0.0,
        Tissue::GreyMatter,
    ),
    e([0.22, 0.0, 0.0], [0.11, 0.31, 0.22], -18.0, Tissue::Csf),
    e([-0.22, 0.0, 0.0], [0.16, 0.41, 0.28], 18.0, Tissue::Csf),
    e([0.0, 0.1, 0.25], [0.046, 0.046, 0.05], 0.0, Tissue::Nodule),
    e([0.0, -0.1, 0.25], [0.046, 0.046, 0.05], 0.0, Tissue::Nodule),
    e(
        [-0.08, -0.605, 0.0],
        [0.046, 0.023, 0.05],
        0.0,
        Tissue::Nodule,
    ),
    e(
        [0.0, -0.606, 0.0],
        [0.023, 0.023, 0.02],
        0.0,
        Tissue::Nodule,
    ),
    e(
        [0.06, -0.605, 0.0],
        [0.023, 0.046, 0.02],
        0.0,
        Tissue::Nodule,
    ),
    e(LESION_CENTRE, [LESION_RADIUS; 3], 0.0, Tissue::Lesion),
];

/// Right frontal lesion (phantom units; x < 0 is patient right).
const LESION_CENTRE: [f64; 3] = [-0.30, 0.50, 0.12];
const LESION_RADIUS: f64 = 0.08;

/// Lesion centre in patient coordinates (mm) and its radius (mm).
pub fn lesion_mm() -> ([f64; 3], f64) {
    let [x, y, z] = LESION_CENTRE;
    (
        [x * MM_PER_UNIT, -y * MM_PER_UNIT, z * MM_PER_UNIT],
        LESION_RADIUS * MM_PER_UNIT,
    )
}

/// Tissue at a point in patient coordinates (mm).
pub fn tissue_at(x_mm: f64, y_mm: f64, z_mm: f64) -> Tissue {
    let p = [x_mm / MM_PER_UNIT, -y_mm / MM_PER_UNIT, z_mm / MM_PER_UNIT];
    let mut tissue = Tissue::Air;
    for el in &HEAD {
        let (s, c) = el.phi.to_radians().sin_cos();
        let dx = p[0] - el.centre[0];
        let dy = p[1] - el.centre[1];
        let dz = p[2] - el.centre[2];
        let u = (c * dx + s * dy) / el.radii[0];
        let v = (-s * dx + c * dy) / el.radii[1];
        let w = dz / el.radii[2];
        if u * u + v * v + w * w <= 1.0 {
            tissue = el.tissue;
        }
    }
    tissue
}

/// CT attenuation in Hounsfield units.
pub fn ct_hu(t: Tissue) -> f64 {
    match t {
        Tissue::Air => -1000.0,
        Tissue::Scalp => 25.0,
        Tissue::Bone => 1100.0,
        Tissue::WhiteMatter => 28.0,
        Tissue::GreyMatter => 38.0,
        Tissue::Csf => 6.0,
        Tissue::Nodule => 45.0,
        Tissue::Lesion => 62.0,
    }
}

/// T2-weighted MR signal (arbitrary units, 12-bit range).
pub fn mr_t2(t: Tissue) -> f64 {
    match t {
        Tissue::Air => 0.0,
        Tissue::Scalp => 760.0,
        Tissue::Bone => 45.0,
        Tissue::WhiteMatter => 390.0,
        Tissue::GreyMatter => 480.0,
        Tissue::Csf => 1480.0,
        Tissue::Nodule => 620.0,
        Tissue::Lesion => 540.0,
    }
}

/// Mean of a 2x2 supersampled property over the pixel centred at (x, y).
pub fn sample_2x2(x: f64, y: f64, z: f64, spacing: f64, f: impl Fn(Tissue) -> f64) -> f64 {
    let q = spacing / 4.0;
    [(-q, -q), (q, -q), (-q, q), (q, q)]
        .iter()
        .map(|(dx, dy)| f(tissue_at(x + dx, y + dy, z)))
        .sum::<f64>()
        / 4.0
}

/// SplitMix64 finaliser, a good 64-bit integer hash.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Deterministic uniform value in [0, 1) for integer coordinates and a seed.
pub fn uniform(x: u32, y: u32, z: u32, seed: u64) -> f64 {
    let key = u64::from(x) | (u64::from(y) << 21) | (u64::from(z) << 42);
    (mix64(key ^ mix64(seed ^ 0xA5A5)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Deterministic, roughly normal noise (mean 0, standard deviation ~1)
/// for integer coordinates and a seed.
pub fn noise(x: u32, y: u32, z: u32, seed: u64) -> f64 {
    let key = u64::from(x) | (u64::from(y) << 21) | (u64::from(z) << 42);
    let h = mix64(key ^ mix64(seed));
    // Sum of four 16-bit uniforms: Irwin-Hall, variance 4/12.
    let sum: f64 = (0..4)
        .map(|i| ((h >> (16 * i)) & 0xFFFF) as f64 / 65535.0)
        .sum();
    (sum - 2.0) * 3f64.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tissues_at_known_points() {
        assert_eq!(tissue_at(0.0, 0.0, 200.0), Tissue::Air);
        assert_eq!(tissue_at(0.0, 0.0, 0.0), Tissue::WhiteMatter);
        // lateral skull at x = 0.70 units: between skull (0.69) and scalp (0.72)
        assert_eq!(tissue_at(0.705 * MM_PER_UNIT, 0.0, 0.0), Tissue::Scalp);
        assert_eq!(tissue_at(0.68 * MM_PER_UNIT, 0.0, 0.0), Tissue::Bone);
        let ([x, y, z], r) = lesion_mm();
        assert_eq!(tissue_at(x, y, z), Tissue::Lesion);
        assert_eq!(tissue_at(x, y, z + 1.2 * r), Tissue::WhiteMatter);
        assert!(
            x < 0.0 && y < 0.0,
            "lesion is right (x<0) and anterior (y<0)"
        );
    }

    #[test]
    fn noise_is_deterministic_and_centred() {
        assert_eq!(noise(1, 2, 3, 4), noise(1, 2, 3, 4));
        assert_ne!(noise(1, 2, 3, 4), noise(2, 2, 3, 4));
        let n = 20_000;
        let v: Vec<f64> = (0..n).map(|i| noise(i, 7, 1, 9)).collect();
        let mean = v.iter().sum::<f64>() / f64::from(n);
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f64::from(n);
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var - 1.0).abs() < 0.1, "{var}");
    }
}
