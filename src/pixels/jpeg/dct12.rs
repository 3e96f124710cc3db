//! 12-bit sequential DCT JPEG with Huffman coding (ISO 10918-1 processes
//! 2 and 4, DICOM JPEG Extended), which jpeg-decoder does not decode.
//!
//! The inverse DCT, the range limit and the colour conversion are those of
//! the IJG library at 12 bits (jidctint.c "islow", jdcolor.c), which is
//! what DCMTK's dcmdjpeg uses: the output matches it sample for sample.
//! Only frames whose components all share one sampling factor are decoded
//! (12-bit images are grey in practice); others are refused, not guessed.

use super::markers::{Markers, be16, corrupt};
use crate::pixels::PixelError;

const MAX_SAMPLE: i32 = 4095;
const CENTER: i32 = 2048;

/// Natural order of the zig-zag sequence (ISO 10918-1 Figure A.6).
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Decodes the frame to 16-bit little-endian samples, interleaved, with
/// YCbCr turned into RGB when `to_rgb`.
pub(crate) fn decode(data: &[u8], markers: &Markers, to_rgb: bool) -> Result<Vec<u8>, PixelError> {
    let first = markers
        .components
        .first()
        .ok_or_else(|| corrupt("no components"))?;
    if markers.components.len() > 1
        && markers
            .components
            .iter()
            .any(|c| (c.h, c.v) != (first.h, first.v))
    {
        return Err(PixelError::Unsupported(
            "12-bit JPEG with subsampled components".into(),
        ));
    }
    let mut decoder = Decoder::new(markers)?;
    decoder.run(data)?;
    Ok(decoder.output(to_rgb))
}

#[derive(Clone)]
struct Huffman {
    /// (code length, code) → value, as maxcode/valptr (F.2.2.3).
    maxcode: [i32; 18],
    valptr: [i32; 17],
    mincode: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Huffman {
        let mut maxcode = [-1; 18];
        let mut valptr = [0; 17];
        let mut mincode = [0; 17];
        let mut code = 0i32;
        let mut k = 0i32;
        for len in 1..=16 {
            let n = i32::from(counts[len - 1]);
            if n > 0 {
                valptr[len] = k;
                mincode[len] = code;
                code += n;
                k += n;
                maxcode[len] = code - 1;
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        Huffman {
            maxcode,
            valptr,
            mincode,
            values,
        }
    }
}

struct Plane {
    /// Samples per line of the (block-padded) plane.
    stride: usize,
    samples: Vec<i32>,
    blocks_wide: usize,
    blocks_high: usize,
}

struct Decoder<'m> {
    markers: &'m Markers,
    quant: [Option<[i32; 64]>; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart_interval: usize,
    planes: Vec<Plane>,
    hmax: usize,
    vmax: usize,
}

impl<'m> Decoder<'m> {
    fn new(markers: &'m Markers) -> Result<Decoder<'m>, PixelError> {
        let hmax = usize::from(markers.components.iter().map(|c| c.h).max().unwrap_or(1)).max(1);
        let vmax = usize::from(markers.components.iter().map(|c| c.v).max().unwrap_or(1)).max(1);
        let (width, height) = (usize::from(markers.width), usize::from(markers.height));
        if width == 0 || height == 0 {
            return Err(corrupt("frame of zero size"));
        }
        let mcus_wide = width.div_ceil(8 * hmax);
        let mcus_high = height.div_ceil(8 * vmax);
        let planes = markers
            .components
            .iter()
            .map(|c| {
                let (h, v) = (usize::from(c.h).max(1), usize::from(c.v).max(1));
                let (bw, bh) = (mcus_wide * h, mcus_high * v);
                Plane {
                    stride: bw * 8,
                    samples: vec![0; bw * 8 * bh * 8],
                    blocks_wide: bw,
                    blocks_high: bh,
                }
            })
            .collect();
        Ok(Decoder {
            markers,
            quant: [None; 4],
            dc: [None, None, None, None],
            ac: [None, None, None, None],
            restart_interval: 0,
            planes,
            hmax,
            vmax,
        })
    }

    /// Walks the marker segments, decoding each scan.
    fn run(&mut self, data: &[u8]) -> Result<(), PixelError> {
        let mut at = 2;
        let mut scans = 0;
        loop {
            while data.get(at) == Some(&0xFF) && data.get(at + 1) == Some(&0xFF) {
                at += 1;
            }
            match (data.get(at), data.get(at + 1)) {
                (Some(0xFF), Some(0xD9)) => break,
                // a codestream cut short after its scans: what was decoded stands
                (None, _) | (Some(_), None) if scans > 0 => break,
                (Some(0xFF), Some(_)) => {}
                _ => return Err(corrupt("marker expected")),
            }
            let marker = data[at + 1];
            let length =
                usize::from(be16(data, at + 2).ok_or_else(|| corrupt("ends in a marker"))?);
            let segment = data
                .get(at + 4..at + 2 + length)
                .filter(|_| length >= 2)
                .ok_or_else(|| corrupt("marker segment beyond the data"))?;
            at += 2 + length;
            match marker {
                0xDB => self.quant_tables(segment)?,
                0xC4 => self.huffman_tables(segment)?,
                0xDD => {
                    self.restart_interval =
                        usize::from(be16(segment, 0).ok_or_else(|| corrupt("short DRI"))?);
                }
                0xDA => {
                    at = self.scan(segment, data, at)?;
                    scans += 1;
                }
                _ => {}
            }
        }
        if scans == 0 {
            return Err(corrupt("no scan"));
        }
        Ok(())
    }

    fn quant_tables(&mut self, mut segment: &[u8]) -> Result<(), PixelError> {
        while let Some(&pq_tq) = segment.first() {
            let (precision, id) = (pq_tq >> 4, usize::from(pq_tq & 0x0F));
            let size = if precision == 0 { 64 } else { 128 };
            let values = segment
                .get(1..1 + size)
                .ok_or_else(|| corrupt("short DQT"))?;
            let mut table = [0i32; 64];
            for (k, &natural) in ZIGZAG.iter().enumerate() {
                table[natural] = if precision == 0 {
                    i32::from(values[k])
                } else {
                    i32::from(u16::from_be_bytes([values[2 * k], values[2 * k + 1]]))
                };
            }
            *self
                .quant
                .get_mut(id)
                .ok_or_else(|| corrupt("quantization table id"))? = Some(table);
            segment = &segment[1 + size..];
        }
        Ok(())
    }

    fn huffman_tables(&mut self, mut segment: &[u8]) -> Result<(), PixelError> {
        while let Some(&tc_th) = segment.first() {
            let counts: [u8; 16] = segment
                .get(1..17)
                .and_then(|c| c.try_into().ok())
                .ok_or_else(|| corrupt("short DHT"))?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let values = segment
                .get(17..17 + total)
                .ok_or_else(|| corrupt("short DHT"))?
                .to_vec();
            let table = Huffman::new(&counts, values);
            let id = usize::from(tc_th & 0x0F);
            let slot = match tc_th >> 4 {
                0 => self.dc.get_mut(id),
                _ => self.ac.get_mut(id),
            };
            *slot.ok_or_else(|| corrupt("Huffman table id"))? = Some(table);
            segment = &segment[17 + total..];
        }
        Ok(())
    }

    /// Decodes one scan; returns where the data after it begins.
    fn scan(&mut self, header: &[u8], data: &[u8], start: usize) -> Result<usize, PixelError> {
        let count = usize::from(*header.first().ok_or_else(|| corrupt("short SOS"))?);
        let mut members = Vec::with_capacity(count);
        for i in 0..count {
            let (Some(&id), Some(&tables)) = (header.get(1 + 2 * i), header.get(2 + 2 * i)) else {
                return Err(corrupt("short SOS"));
            };
            let index = self
                .markers
                .components
                .iter()
                .position(|c| c.id == id)
                .ok_or_else(|| corrupt("scan names an unknown component"))?;
            let component = &self.markers.components[index];
            let quant = self
                .quant
                .get(usize::from(component.quant_table))
                .copied()
                .flatten()
                .ok_or_else(|| corrupt("missing quantization table"))?;
            let dc = self.dc[usize::from(tables >> 4) & 3]
                .clone()
                .ok_or_else(|| corrupt("missing DC table"))?;
            let ac = self.ac[usize::from(tables & 0x0F) & 3]
                .clone()
                .ok_or_else(|| corrupt("missing AC table"))?;
            members.push((index, quant, dc, ac));
        }
        let mut reader = Bits::new(data, start);
        let mut predictions = vec![0i32; count];
        // a single-component scan codes each block as its own MCU, over
        // the component's own size; an interleaved one in MCUs of h×v blocks
        let (mcus_wide, mcus_high, units): (usize, usize, Vec<Vec<(usize, usize)>>) = if count == 1
        {
            let c = &self.markers.components[members[0].0];
            let width = (usize::from(self.markers.width) * usize::from(c.h)).div_ceil(self.hmax);
            let height = (usize::from(self.markers.height) * usize::from(c.v)).div_ceil(self.vmax);
            (width.div_ceil(8), height.div_ceil(8), vec![vec![(0, 0)]])
        } else {
            let units = members
                .iter()
                .map(|(i, ..)| {
                    let c = &self.markers.components[*i];
                    (0..usize::from(c.v))
                        .flat_map(|y| (0..usize::from(c.h)).map(move |x| (x, y)))
                        .collect()
                })
                .collect();
            (
                usize::from(self.markers.width).div_ceil(8 * self.hmax),
                usize::from(self.markers.height).div_ceil(8 * self.vmax),
                units,
            )
        };
        let mut coefficients = [0i32; 64];
        for mcu in 0..mcus_wide * mcus_high {
            if self.restart_interval > 0 && mcu > 0 && mcu % self.restart_interval == 0 {
                reader.restart();
                predictions.iter_mut().for_each(|p| *p = 0);
            }
            let (mx, my) = (mcu % mcus_wide, mcu / mcus_wide);
            for (m, (index, quant, dc, ac)) in members.iter().enumerate() {
                let c = &self.markers.components[*index];
                let (h, v) = if count == 1 {
                    (1, 1)
                } else {
                    (usize::from(c.h), usize::from(c.v))
                };
                for &(bx, by) in &units[m.min(units.len() - 1)] {
                    coefficients.fill(0);
                    let size = reader.decode(dc)?;
                    if size > 16 {
                        return Err(corrupt("DC difference category"));
                    }
                    predictions[m] += reader.receive_extend(size)?;
                    coefficients[0] = predictions[m];
                    let mut k = 1;
                    while k < 64 {
                        let rs = reader.decode(ac)?;
                        let (run, size) = (usize::from(rs >> 4), rs & 0x0F);
                        if size == 0 {
                            if run != 15 {
                                break;
                            }
                            k += 16;
                            continue;
                        }
                        k += run;
                        if k > 63 {
                            return Err(corrupt("AC coefficient beyond the block"));
                        }
                        coefficients[ZIGZAG[k]] = reader.receive_extend(size)?;
                        k += 1;
                    }
                    let (block_x, block_y) = (mx * h + bx, my * v + by);
                    let plane = &mut self.planes[*index];
                    if block_x < plane.blocks_wide && block_y < plane.blocks_high {
                        let at = block_y * 8 * plane.stride + block_x * 8;
                        idct_islow(&coefficients, quant, &mut plane.samples[at..], plane.stride);
                    }
                }
            }
        }
        Ok(reader.end())
    }

    fn output(&self, to_rgb: bool) -> Vec<u8> {
        let (width, height) = (
            usize::from(self.markers.width),
            usize::from(self.markers.height),
        );
        let n = self.planes.len();
        let mut out = Vec::with_capacity(width * height * n * 2);
        let mut pixel = vec![0i32; n];
        for y in 0..height {
            for x in 0..width {
                for (c, plane) in self.planes.iter().enumerate() {
                    pixel[c] = plane.samples[y * plane.stride + x];
                }
                if to_rgb && n == 3 {
                    ycc_to_rgb(&mut pixel);
                }
                for &s in &pixel {
                    out.extend_from_slice(&(s as u16).to_le_bytes());
                }
            }
        }
        out
    }
}

/// Entropy-coded data: bytes with 0xFF00 stuffing; a marker ends it, after
/// which zeros are read (as libjpeg does for a truncated scan).
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    buffer: u32,
    count: u32,
    marker_seen: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], at: usize) -> Bits<'a> {
        Bits {
            data,
            at,
            buffer: 0,
            count: 0,
            marker_seen: false,
        }
    }

    fn fill(&mut self) {
        while self.count <= 24 {
            let mut byte = 0;
            if !self.marker_seen {
                match (self.data.get(self.at), self.data.get(self.at + 1)) {
                    (Some(0xFF), Some(0x00)) => {
                        byte = 0xFF;
                        self.at += 2;
                    }
                    (Some(0xFF), _) | (None, _) => self.marker_seen = true,
                    (Some(&b), _) => {
                        byte = b;
                        self.at += 1;
                    }
                }
            }
            self.buffer |= u32::from(byte) << (24 - self.count);
            self.count += 8;
        }
    }

    fn bit(&mut self) -> i32 {
        if self.count == 0 {
            self.fill();
        }
        let bit = (self.buffer >> 31) as i32;
        self.buffer <<= 1;
        self.count -= 1;
        bit
    }

    fn bits(&mut self, n: u8) -> i32 {
        if n == 0 {
            return 0;
        }
        if self.count < u32::from(n) {
            self.fill();
        }
        let value = (self.buffer >> (32 - u32::from(n))) as i32;
        self.buffer <<= n;
        self.count -= u32::from(n);
        value
    }

    fn decode(&mut self, table: &Huffman) -> Result<u8, PixelError> {
        let mut code = self.bit();
        for len in 1..=16 {
            if code <= table.maxcode[len] {
                let index = table.valptr[len] + code - table.mincode[len];
                return table
                    .values
                    .get(index as usize)
                    .copied()
                    .ok_or_else(|| corrupt("Huffman code"));
            }
            code = (code << 1) | self.bit();
        }
        Err(corrupt("Huffman code longer than 16 bits"))
    }

    /// RECEIVE and EXTEND (F.2.2.1).
    fn receive_extend(&mut self, size: u8) -> Result<i32, PixelError> {
        if size == 0 {
            return Ok(0);
        }
        if size > 16 {
            return Err(corrupt("coefficient size"));
        }
        let value = self.bits(size);
        Ok(if value < 1 << (size - 1) {
            value - (1 << size) + 1
        } else {
            value
        })
    }

    /// Skips to and past the RSTn marker that must come next.
    fn restart(&mut self) {
        self.buffer = 0;
        self.count = 0;
        self.marker_seen = false;
        while let Some(&b) = self.data.get(self.at) {
            if b == 0xFF && matches!(self.data.get(self.at + 1), Some(0xD0..=0xD7)) {
                self.at += 2;
                return;
            }
            if b == 0xFF && !matches!(self.data.get(self.at + 1), Some(0x00) | Some(0xFF)) {
                return;
            }
            self.at += 1;
        }
    }

    /// Where the next marker begins.
    fn end(&self) -> usize {
        let mut at = self.at;
        while let Some(&b) = self.data.get(at) {
            if b == 0xFF && !matches!(self.data.get(at + 1), Some(0x00) | None) {
                return at;
            }
            at += 1;
        }
        at
    }
}

const CONST_BITS: i32 = 13;
/// jidctint.c at 12 bits: one bit less in pass 1, to avoid overflow.
const PASS1_BITS: i32 = 1;
const FIX_0_298631336: i32 = 2446;
const FIX_0_390180644: i32 = 3196;
const FIX_0_541196100: i32 = 4433;
const FIX_0_765366865: i32 = 6270;
const FIX_0_899976223: i32 = 7373;
const FIX_1_175875602: i32 = 9633;
const FIX_1_501321110: i32 = 12299;
const FIX_1_847759065: i32 = 15137;
const FIX_1_961570560: i32 = 16069;
const FIX_2_053119869: i32 = 16819;
const FIX_2_562915447: i32 = 20995;
const FIX_3_072711026: i32 = 25172;

fn descale(x: i64, n: i32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

/// IJG's range limit after the IDCT: the value masked as the table index
/// libjpeg uses (a wrap beyond ±2×(MAX+1)), then centred and clamped.
fn range_limit(x: i64) -> i32 {
    let span = 4 * (i64::from(MAX_SAMPLE) + 1);
    let mut k = x & (span - 1);
    if k >= span / 2 {
        k -= span;
    }
    (k + i64::from(CENTER)).clamp(0, i64::from(MAX_SAMPLE)) as i32
}

/// One 8×8 block, coefficients in natural order, into `out` (row stride
/// `stride`): jpeg_idct_islow.
fn idct_islow(coefficients: &[i32; 64], quant: &[i32; 64], out: &mut [i32], stride: usize) {
    let mut work = [0i64; 64];
    for col in 0..8 {
        let q =
            |row: usize| i64::from(coefficients[row * 8 + col]) * i64::from(quant[row * 8 + col]);
        if (1..8).all(|row| coefficients[row * 8 + col] == 0) {
            let dc = q(0) << PASS1_BITS;
            for row in 0..8 {
                work[row * 8 + col] = dc;
            }
            continue;
        }
        let column = [q(0), q(1), q(2), q(3), q(4), q(5), q(6), q(7)];
        let result = butterfly(column, CONST_BITS - PASS1_BITS);
        for row in 0..8 {
            work[row * 8 + col] = result[row];
        }
    }
    for row in 0..8 {
        let w = &work[row * 8..row * 8 + 8];
        let line = &mut out[row * stride..row * stride + 8];
        if w[1..].iter().all(|&v| v == 0) {
            let value = range_limit(descale(w[0], PASS1_BITS + 3));
            line.fill(value);
            continue;
        }
        let result = butterfly(
            [w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]],
            CONST_BITS + PASS1_BITS + 3,
        );
        for (x, value) in result.into_iter().enumerate() {
            line[x] = range_limit(value);
        }
    }
}

/// The even and odd parts of jidctint.c for one column or row, descaled by
/// `shift`.
fn butterfly(v: [i64; 8], shift: i32) -> [i64; 8] {
    let fix = |c: i32| i64::from(c);
    // even part
    let (z2, z3) = (v[2], v[6]);
    let z1 = (z2 + z3) * fix(FIX_0_541196100);
    let tmp2 = z1 + z3 * -fix(FIX_1_847759065);
    let tmp3 = z1 + z2 * fix(FIX_0_765366865);
    let tmp0 = (v[0] + v[4]) << CONST_BITS;
    let tmp1 = (v[0] - v[4]) << CONST_BITS;
    let (tmp10, tmp13) = (tmp0 + tmp3, tmp0 - tmp3);
    let (tmp11, tmp12) = (tmp1 + tmp2, tmp1 - tmp2);
    // odd part
    let (mut t0, mut t1, mut t2, mut t3) = (v[7], v[5], v[3], v[1]);
    let mut z1 = t0 + t3;
    let mut z2 = t1 + t2;
    let mut z3 = t0 + t2;
    let mut z4 = t1 + t3;
    let z5 = (z3 + z4) * fix(FIX_1_175875602);
    t0 *= fix(FIX_0_298631336);
    t1 *= fix(FIX_2_053119869);
    t2 *= fix(FIX_3_072711026);
    t3 *= fix(FIX_1_501321110);
    z1 *= -fix(FIX_0_899976223);
    z2 *= -fix(FIX_2_562915447);
    z3 *= -fix(FIX_1_961570560);
    z4 *= -fix(FIX_0_390180644);
    z3 += z5;
    z4 += z5;
    t0 += z1 + z3;
    t1 += z2 + z4;
    t2 += z2 + z3;
    t3 += z1 + z4;
    [
        descale(tmp10 + t3, shift),
        descale(tmp11 + t2, shift),
        descale(tmp12 + t1, shift),
        descale(tmp13 + t0, shift),
        descale(tmp13 - t0, shift),
        descale(tmp12 - t1, shift),
        descale(tmp11 - t2, shift),
        descale(tmp10 - t3, shift),
    ]
}

/// jdcolor.c's ycc_rgb_convert at 12 bits (SCALEBITS 16, rounded tables).
fn ycc_to_rgb(pixel: &mut [i32]) {
    const ONE_HALF: i64 = 1 << 15;
    let fix = |x: f64| (x * 65536.0 + 0.5) as i64;
    let (y, cb, cr) = (
        i64::from(pixel[0]),
        i64::from(pixel[1] - CENTER),
        i64::from(pixel[2] - CENTER),
    );
    let r = y + ((fix(1.40200) * cr + ONE_HALF) >> 16);
    let g = y + ((-fix(0.34414) * cb - fix(0.71414) * cr + ONE_HALF) >> 16);
    let b = y + ((fix(1.77200) * cb + ONE_HALF) >> 16);
    for (out, value) in pixel.iter_mut().zip([r, g, b]) {
        *out = value.clamp(0, i64::from(MAX_SAMPLE)) as i32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_block_is_its_dc_level() {
        let mut coefficients = [0; 64];
        coefficients[0] = 10;
        let quant = [8; 64];
        let mut out = vec![0; 64];
        idct_islow(&coefficients, &quant, &mut out, 8);
        // DC 80 over 8×8: level 80/8 = 10 above the centre
        assert!(out.iter().all(|&v| v == CENTER + 10), "{out:?}");
    }

    #[test]
    fn the_range_limit_clamps_and_wraps_as_libjpeg_does() {
        assert_eq!(range_limit(0), CENTER);
        assert_eq!(range_limit(-CENTER as i64 - 5), 0);
        assert_eq!(range_limit(5000), MAX_SAMPLE);
        // beyond the table: libjpeg's mask wraps it
        assert_eq!(range_limit(4 * 4096 + 3), CENTER + 3);
    }

    #[test]
    fn huffman_codes_are_canonical() {
        // two codes of length 2 (00, 01), one of length 3 (100)
        let mut counts = [0u8; 16];
        counts[1] = 2;
        counts[2] = 1;
        let table = Huffman::new(&counts, vec![7, 8, 9]);
        let data = [0b0110_0000, 0x00];
        let mut bits = Bits::new(&data, 0);
        assert_eq!(bits.decode(&table).unwrap(), 8);
        assert_eq!(bits.decode(&table).unwrap(), 9);
        assert_eq!(bits.decode(&table).unwrap(), 7);
    }
}
