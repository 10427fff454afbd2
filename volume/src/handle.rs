//! `NeedleHandle`: an opened needle's metadata plus positioned reads of its data, for streaming.
//!
//! Small needles (up to 64 KiB on disk) are read whole and CRC-checked when opened; larger
//! ones read only their header and metadata, and the data is fetched on demand with
//! positioned reads, so a multi-megabyte needle is never buffered. No lock is held: the
//! handle owns a reference to the open `.dat`, which stays valid even if a vacuum swaps
//! the file underneath. The bytes may also come from an EC volume's shards
//! ([`RecordSource`]), read and rebuilt range by range.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::direct::Direct;
use crate::error::{IoContext, Result, VolumeError};
use crate::needle::{
    HEADER_SIZE, MAX_SIZE_FIELD, Needle, NeedleHeader, NeedleMeta, Version, actual_size, be_u32,
    checksum_matches, parse_meta, parse_tail,
};

/// Needles up to this many bytes on disk are read in one go when opened.
const INLINE_MAX: u64 = 64 * 1024;
/// CRC verification of large needles reads this much at a time.
pub const CRC_CHUNK: usize = 1 << 20;

/// Where a needle record's bytes are read from, by their offset in the (original)
/// `.dat`: the file itself, or an EC volume that reads and rebuilds the range.
pub trait RecordSource: Send + Sync + std::fmt::Debug {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> Result<()>;

    /// `len` bytes at `at` in a new buffer.
    fn read_bytes_at(&self, len: usize, at: u64) -> Result<Bytes> {
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, at)?;
        Ok(Bytes::from(buf))
    }
}

/// A `.dat` file as a [`RecordSource`].
#[derive(Debug)]
struct DatFile {
    file: Arc<File>,
    /// The same file opened for direct I/O, for large reads ([`crate::direct`]).
    direct: Option<Arc<Direct>>,
    path: Arc<Path>,
}

impl RecordSource for DatFile {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, at)
            .ctx(|| format!("reading {} at offset {at}", self.path.display()))
    }

    /// Large reads go around the page cache where the volume has a direct handle.
    /// Others read straight into the buffer's spare capacity: no zero-filling first,
    /// which cost as much as a copy on large reads. Large buffers come from the shared
    /// pool (`kelp_proto::buffers`): fresh ones cost a page fault and a zero-fill per page.
    fn read_bytes_at(&self, len: usize, at: u64) -> Result<Bytes> {
        if let Some(d) = &self.direct
            && let Some(b) = d
                .read(&self.file, len, at)
                .ctx(|| format!("reading {} at offset {at}", self.path.display()))?
        {
            return Ok(b);
        }
        let mut buf = kelp_proto::buffers::take(len);
        while buf.len() < len {
            let pos = at + buf.len() as u64;
            let n = rustix::io::pread(&*self.file, rustix::buffer::spare_capacity(&mut buf), pos)
                .map_err(std::io::Error::from)
                .ctx(|| format!("reading {} at offset {pos}", self.path.display()))?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
                    .ctx(|| format!("reading {} at offset {pos}", self.path.display()));
            }
        }
        // A pooled buffer may have a little more room than `len`: the last read may
        // take bytes past the needle, which are cut off here.
        buf.truncate(len);
        Ok(kelp_proto::buffers::share(buf))
    }
}

/// An opened needle. `Send + Sync`: move it to a blocking task to stream the data.
#[derive(Debug)]
pub struct NeedleHandle {
    meta: NeedleMeta,
    dat: Arc<dyn RecordSource>,
    record_offset: u64,
    data_offset: u64,
    record_len: u64,
    inline: Option<Bytes>,
    crc_verified: bool,
}

impl NeedleHandle {
    /// Opens the needle record at byte `offset` of `dat` (whose length is `dat_len`).
    /// Checks that the record lies wholly inside the file and that its fields are
    /// consistent; small needles are CRC-checked here, large ones by [`Self::verify_crc`].
    pub(crate) fn open_at(
        dat: Arc<File>,
        path: Arc<Path>,
        dat_len: u64,
        offset: u64,
        version: Version,
    ) -> Result<NeedleHandle> {
        Self::open_in(dat, None, path, dat_len, offset, version)
    }

    /// [`Self::open_at`], reading large data around the page cache through `direct`.
    pub(crate) fn open_in(
        dat: Arc<File>,
        direct: Option<Arc<Direct>>,
        path: Arc<Path>,
        dat_len: u64,
        offset: u64,
        version: Version,
    ) -> Result<NeedleHandle> {
        let src = Arc::new(DatFile {
            file: dat,
            direct,
            path: path.clone(),
        });
        Self::open_from(src, path, dat_len, offset, version)
    }

    /// [`Self::open_at`] over any [`RecordSource`]; `path` names it in errors.
    pub(crate) fn open_from(
        dat: Arc<dyn RecordSource>,
        path: Arc<Path>,
        dat_len: u64,
        offset: u64,
        version: Version,
    ) -> Result<NeedleHandle> {
        let corrupt = |reason: String| VolumeError::corrupt("needle", reason).at(&path, offset);
        let read = |buf: &mut [u8], at: u64| dat.read_exact_at(buf, at);
        if offset + HEADER_SIZE as u64 > dat_len {
            return Err(corrupt(format!(
                "header runs past the end of the file ({dat_len} bytes)"
            )));
        }
        let mut hb = [0u8; HEADER_SIZE];
        read(&mut hb, offset)?;
        let header = NeedleHeader::parse(&hb);
        if header.size > MAX_SIZE_FIELD {
            return Err(corrupt(format!("implausible Size {}", header.size)));
        }
        let record_len = actual_size(header.size, version);
        if offset + record_len > dat_len {
            return Err(corrupt(format!(
                "record of {record_len} bytes runs past the end of the file ({dat_len} bytes)"
            )));
        }
        let data_start = if version == Version::V1 { 16 } else { 20 };
        if record_len <= INLINE_MAX {
            let mut buf = vec![0u8; record_len as usize];
            read(&mut buf, offset)?;
            let n = Needle::decode(&buf, version).map_err(|e| e.at(&path, offset))?;
            let mut meta = n.meta();
            meta.size = header.size;
            return Ok(NeedleHandle {
                meta,
                data_offset: offset + data_start,
                inline: Some(n.data),
                crc_verified: true,
                dat,
                record_offset: offset,
                record_len,
            });
        }
        // A large record: Size > 0 here, since an empty body fits inline.
        let size = header.size as u64;
        let (data_len, meta_len) = if version == Version::V1 {
            (size, 0)
        } else {
            let mut b = [0u8; 4];
            read(&mut b, offset + 16)?;
            let data_len = be_u32(&b) as u64;
            if 4 + data_len > size {
                return Err(corrupt(format!(
                    "DataSize {data_len} does not fit in Size {size}"
                )));
            }
            (data_len, size - 4 - data_len)
        };
        let tail_start = offset + data_start + data_len;
        let tail_len = meta_len + record_len - 16 - size;
        let mut tail = vec![0u8; tail_len as usize];
        read(&mut tail, tail_start)?;
        let fields = parse_meta(&tail[..meta_len as usize]).map_err(|e| e.at(&path, offset))?;
        let (checksum, append_at_ns) = parse_tail(&tail[meta_len as usize..], version);
        let meta = NeedleMeta {
            cookie: header.cookie,
            key: header.key,
            size: header.size,
            data_len,
            flags: fields.flags,
            name: fields.name,
            mime: fields.mime,
            last_modified: fields.last_modified,
            ttl: fields.ttl,
            pairs: fields.pairs,
            checksum,
            append_at_ns,
        };
        Ok(NeedleHandle {
            meta,
            data_offset: offset + data_start,
            inline: None,
            crc_verified: data_len == 0,
            dat,
            record_offset: offset,
            record_len,
        })
    }

    pub fn meta(&self) -> &NeedleMeta {
        &self.meta
    }

    /// Length of the stored data (gzip bytes when [`Self::is_gzip`]).
    pub fn data_len(&self) -> u64 {
        self.meta.data_len
    }

    pub fn is_gzip(&self) -> bool {
        self.meta.is_gzip()
    }

    /// The ETag (8 hex digits of the CRC).
    pub fn etag(&self) -> String {
        self.meta.etag()
    }

    /// True when the data was read (and CRC-checked) with the header, so reading it
    /// again costs no I/O.
    pub fn is_loaded(&self) -> bool {
        self.inline.is_some()
    }

    /// True once the data's CRC has been checked (always for small needles).
    pub fn crc_verified(&self) -> bool {
        self.crc_verified
    }

    /// Byte offset of the record in the `.dat`, and its length on disk.
    pub fn record_span(&self) -> (u64, u64) {
        (self.record_offset, self.record_len)
    }

    /// Reads data bytes starting at `pos` into `buf`; returns how many were read
    /// (`buf.len()` unless the data ends first; 0 at or past the end).
    pub fn read_data_at(&self, pos: u64, buf: &mut [u8]) -> Result<usize> {
        if pos >= self.meta.data_len {
            return Ok(0);
        }
        let n = (self.meta.data_len - pos).min(buf.len() as u64) as usize;
        if let Some(d) = &self.inline {
            buf[..n].copy_from_slice(&d[pos as usize..pos as usize + n]);
            return Ok(n);
        }
        self.dat
            .read_exact_at(&mut buf[..n], self.data_offset + pos)?;
        Ok(n)
    }

    /// Checks the data against the stored CRC, reading at most [`CRC_CHUNK`] bytes at a
    /// time. Call it before streaming a large needle: a mismatch means corrupt data.
    pub fn verify_crc(&mut self) -> Result<()> {
        if self.crc_verified {
            return Ok(());
        }
        let mut buf = vec![0u8; CRC_CHUNK.min(self.meta.data_len as usize)];
        let mut crc = 0u32;
        let mut pos = 0u64;
        while pos < self.meta.data_len {
            let n = self.read_data_at(pos, &mut buf)?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            pos += n as u64;
        }
        self.accept_crc(crc)
    }

    /// Records `crc`, computed over the whole data, if it matches the stored one.
    fn accept_crc(&mut self, crc: u32) -> Result<()> {
        if !checksum_matches(self.meta.checksum, crc) {
            return Err(VolumeError::CrcMismatch {
                key: self.meta.key,
                stored: self.meta.checksum,
                computed: crc,
            });
        }
        self.meta.checksum = crc;
        self.crc_verified = true;
        Ok(())
    }

    /// The whole data, CRC-checked: one read, then the CRC over the bytes in memory.
    pub fn read_all(&mut self) -> Result<Bytes> {
        if let Some(d) = &self.inline {
            let d = d.clone();
            self.verify_crc()?;
            return Ok(d);
        }
        let buf = self
            .dat
            .read_bytes_at(self.meta.data_len as usize, self.data_offset)?;
        if !self.crc_verified {
            self.accept_crc(crc32c::crc32c(&buf))?;
        }
        Ok(buf)
    }

    /// Reassembles a [`Needle`] (reads and verifies the data).
    pub fn into_needle(mut self) -> Result<Needle> {
        let data = self.read_all()?;
        let m = self.meta;
        Ok(Needle {
            cookie: m.cookie,
            key: m.key,
            data,
            flags: m.flags,
            name: m.name,
            mime: m.mime,
            last_modified: m.last_modified,
            ttl: m.ttl,
            pairs: m.pairs,
            checksum: m.checksum,
            append_at_ns: m.append_at_ns,
        })
    }
}
