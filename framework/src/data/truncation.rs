//! Whether a JPEG file ends early. The decoder used here fills a truncated image with grey and
//! carries on; PIL, which the reference reads images with, refuses it (`OSError: image file is
//! truncated`). The check follows PIL's verdicts (`tools/fixtures/truncated_jpeg.py`):
//!
//! - a file with an end-of-image marker after its first scan is complete (bytes after the
//!   marker are ignored, as PIL ignores them);
//! - a progressive file without one is truncated (its decoder waits for more scans);
//! - a sequential file without one is complete only when its entropy-coded data holds every
//!   block (PIL accepts a file that lacks just the marker). The decoder reads zero bits past
//!   the end of the data, so the file is decoded twice, once followed by zero bits and once by
//!   one bits: the pixels differ exactly when decoding needed bits the file does not have.
//!
//! The usual case costs a look at the file's last bytes.

use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Start-of-scan marker.
const SOS: u8 = 0xDA;
/// End-of-image marker.
const EOI: u8 = 0xD9;
/// Start-of-frame markers of progressive JPEG (SOF2, SOF6, SOF10, SOF14).
const PROGRESSIVE_FRAMES: [u8; 4] = [0xC2, 0xC6, 0xCA, 0xCE];

/// Why the JPEG `bytes` is truncated, or `None` when it is complete.
pub fn jpeg_truncation(bytes: &[u8]) -> Option<String> {
    let (scan_start, progressive) = first_scan(bytes)?;
    // Inside entropy-coded data a 0xFF byte is followed by 0x00 or a restart marker, never by
    // 0xD9: the first such pair from the end is the end-of-image marker.
    let has_end = bytes[scan_start..]
        .windows(2)
        .rev()
        .any(|pair| pair == [0xFF, EOI]);
    if has_end {
        return None;
    }
    if progressive {
        return Some("the file ends before its end-of-image marker (truncated)".into());
    }
    let decoded_with = |tail: &[u8]| {
        let mut padded = bytes.to_vec();
        padded.extend_from_slice(tail);
        JpegDecoder::new_with_options(std::io::Cursor::new(padded), DecoderOptions::default())
            .decode()
            .ok()
    };
    // 0xFF is followed by a stuffed 0x00 inside entropy-coded data.
    let zeros = decoded_with(&[0x00; 64]);
    let ones = decoded_with(&[0xFF, 0x00].repeat(32));
    match (zeros, ones) {
        (Some(a), Some(b)) if a != b => {
            Some("the file ends before all its image data (truncated)".into())
        }
        _ => None,
    }
}

/// Where the first scan's data starts and whether the frame is progressive, from the marker
/// segments before it; `None` when the headers cannot be walked (the decoder reports those).
fn first_scan(bytes: &[u8]) -> Option<(usize, bool)> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    let mut progressive = false;
    loop {
        // Markers may be padded with extra 0xFF bytes.
        while bytes.get(at)? == &0xFF && bytes.get(at + 1)? == &0xFF {
            at += 1;
        }
        if bytes.get(at)? != &0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let length = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        if PROGRESSIVE_FRAMES.contains(&marker) {
            progressive = true;
        }
        let next = at + 2 + length;
        if marker == SOS {
            return Some((next.min(bytes.len()), progressive));
        }
        at = next;
    }
}
