//! Layer decompression chosen by magic bytes: gzip (multi-member), zstd
//! (multi-frame, skippable frames skipped, as zstd:chunked writes them) or
//! plain.

use std::io::{self, BufRead, BufReader, Read};

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

use crate::error::{Result, StorageError};

/// Wrap `src` in the decompressor its magic bytes call for.
pub fn decompress<'a>(src: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(128 << 10, src);
    let head = br
        .fill_buf()
        .map_err(|source| StorageError::ReadLayer { source })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = StreamingDecoder::new(br).map_err(|source| StorageError::Zstd { source })?;
        Ok(Box::new(ZstdFrames { dec: Some(d) }))
    } else {
        Ok(Box::new(br))
    }
}

/// Reads zstd frames back to back until the input ends.
struct ZstdFrames<R: BufRead> {
    dec: Option<StreamingDecoder<R, FrameDecoder>>,
}

impl<R: BufRead> ZstdFrames<R> {
    /// Start the next frame, skipping skippable ones; `false` at the end
    /// of the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        let Some(dec) = self.dec.take() else {
            return Ok(false);
        };
        let (mut src, fd) = dec.into_parts();
        loop {
            let head = src.fill_buf()?;
            if head.is_empty() {
                return Ok(false);
            }
            if head.len() >= 8
                && (0x184D_2A50..=0x184D_2A5F)
                    .contains(&u32::from_le_bytes([head[0], head[1], head[2], head[3]]))
            {
                let length = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
                src.consume(8);
                if io::copy(&mut (&mut src).take(length), &mut io::sink())? != length {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated zstd skippable frame",
                    ));
                }
                continue;
            }
            break;
        }
        self.dec = Some(StreamingDecoder::new_with_decoder(src, fd).map_err(io::Error::other)?);
        Ok(true)
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(dec) = self.dec.as_mut() else {
                return Ok(0);
            };
            let n = dec.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if !self.next_frame()? {
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_frames_back_to_back_with_a_skippable_frame_between() {
        let mut data = ruzstd::encoding::compress_to_vec(
            &b"hello "[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        data.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        data.extend_from_slice(&3u32.to_le_bytes());
        data.extend_from_slice(b"xyz");
        data.extend(ruzstd::encoding::compress_to_vec(
            &b"world"[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        ));
        let mut out = String::new();
        decompress(&data[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn gzip_members_back_to_back() {
        use std::io::Write;
        let mut data = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(part).unwrap();
            data.extend(w.finish().unwrap());
        }
        let mut out = String::new();
        decompress(&data[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello world");
    }
}
