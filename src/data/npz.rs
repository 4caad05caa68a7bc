//! NumPy `.npz` archives (a zip of `.npy` files, usually deflate-compressed), read as streams.
//!
//! Arrays are decompressed row by row straight from the archive, so a 3 GB image array never
//! has to sit in memory. Headers are parsed by `npyz`; rows are read raw because they are
//! copied out as bytes anyway. Entries we do not read (such as the pickled `metadata` of the
//! official dSprites file) are never touched.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// An open `.npz` file.
pub struct NpzArchive {
    path: PathBuf,
    zip: zip::ZipArchive<BufReader<File>>,
}

/// One array of an archive, positioned at its first row.
pub struct NpyRows<'a> {
    path: &'a Path,
    name: String,
    entry: zip::read::ZipFile<'a, BufReader<File>>,
    shape: Vec<u64>,
    type_str: String,
    rows_read: u64,
}

/// Name, shape and dtype of one array in an archive.
#[derive(Clone, Debug)]
pub struct ArrayInfo {
    pub name: String,
    pub shape: Vec<u64>,
    pub dtype: String,
}

impl NpzArchive {
    /// Opens `path` as a zip archive.
    pub fn open(path: &Path) -> Result<NpzArchive> {
        let file = File::open(path).map_err(|e| Error::file(path, e))?;
        let zip = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| Error::file(path, format!("not a valid .npz (zip) archive: {e}")))?;
        Ok(NpzArchive { path: path.to_path_buf(), zip })
    }

    /// An error about this archive.
    pub fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::file(&self.path, message)
    }

    /// Names of the arrays (entries without their `.npy` suffix).
    pub fn names(&self) -> Vec<String> {
        self.zip.file_names().map(|n| n.trim_end_matches(".npy").to_string()).collect()
    }

    /// Shape and dtype of every array that has a plain numeric dtype.
    pub fn infos(&mut self) -> Result<Vec<ArrayInfo>> {
        let mut infos = Vec::new();
        for name in self.names() {
            if let Ok(rows) = self.array(&name) {
                infos.push(ArrayInfo {
                    name,
                    shape: rows.shape.clone(),
                    dtype: rows.type_str.clone(),
                });
            }
        }
        Ok(infos)
    }

    /// Opens array `name` for reading row by row.
    pub fn array(&mut self, name: &str) -> Result<NpyRows<'_>> {
        let path = self.path.as_path();
        let mut entry = self
            .zip
            .by_name(&format!("{name}.npy"))
            .map_err(|_| Error::file(path, format!("has no array '{name}'")))?;
        let header = npyz::NpyHeader::from_reader(&mut entry)
            .map_err(|e| Error::file(path, format!("array '{name}' has a bad .npy header: {e}")))?;
        let npy = npyz::NpyFile::with_header(header, std::io::empty());
        let type_str = match npy.dtype() {
            npyz::DType::Plain(ts) => ts.to_string(),
            other => {
                return Err(Error::file(
                    path,
                    format!("array '{name}' has unsupported dtype {}", other.descr()),
                ));
            }
        };
        if npy.order() != npyz::Order::C {
            return Err(Error::file(
                path,
                format!("array '{name}' is Fortran-ordered; only C order is supported"),
            ));
        }
        let shape = npy.shape().to_vec();
        let rows = NpyRows { path, name: name.to_string(), entry, shape, type_str, rows_read: 0 };
        // The header's shape is checked against the member's real size, so a corrupt header
        // cannot make a reader allocate more than the file holds.
        let held = rows.entry.size();
        match rows.byte_len() {
            Some(claimed) if claimed <= held => Ok(rows),
            _ => Err(rows.error(format!(
                "claims shape {:?} of dtype {}, more than its {held} bytes",
                rows.shape, rows.type_str
            ))),
        }
    }

    /// Reads a whole integer array (any integer dtype) as `i64`, with its shape.
    pub fn read_integers(&mut self, name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
        let mut rows = self.array(name)?;
        let (endian, kind, size) = rows.scalar_type()?;
        if kind != 'i' && kind != 'u' {
            return Err(rows.error(format!("must hold integers (found dtype {})", rows.type_str)));
        }
        let len = rows.byte_len().expect("checked when opened") as usize;
        let mut bytes = vec![0u8; len];
        rows.read_exact(&mut bytes)?;
        rows.finish()?;
        let values = bytes.chunks_exact(size).map(|b| decode_integer(b, endian, kind)).collect();
        Ok((rows.shape.iter().map(|&d| d as usize).collect(), values))
    }
}

fn decode_integer(bytes: &[u8], endian: char, kind: char) -> i64 {
    let mut buf = [0u8; 8];
    let n = bytes.len();
    if endian == '>' {
        for (i, b) in bytes.iter().rev().enumerate() {
            buf[i] = *b;
        }
    } else {
        buf[..n].copy_from_slice(bytes);
    }
    let negative = kind == 'i' && buf[n - 1] & 0x80 != 0;
    if negative {
        for b in &mut buf[n..] {
            *b = 0xff;
        }
    }
    i64::from_le_bytes(buf)
}

impl NpyRows<'_> {
    /// The array's shape.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The numpy type string, e.g. `|u1` or `<i8`.
    pub fn dtype_name(&self) -> &str {
        &self.type_str
    }

    /// Bytes per element.
    pub fn item_size(&self) -> usize {
        self.scalar_type().map(|(_, _, s)| s).unwrap_or(0)
    }

    /// Bytes of the array's data as its header declares it (None when that overflows or the
    /// dtype is not one of ours).
    fn byte_len(&self) -> Option<u64> {
        let size = self.scalar_type().ok()?.2 as u64;
        self.shape.iter().try_fold(size, |acc, &d| acc.checked_mul(d))
    }

    /// Reads the rest of the member, so that its checksum is verified: a member whose bytes
    /// do not match its CRC-32 is an error, however few of its rows were needed.
    pub fn finish(&mut self) -> Result<()> {
        std::io::copy(&mut self.entry, &mut std::io::sink()).map(drop).map_err(|e| {
            self.error(format!("is corrupt (its checksum or compression does not verify): {e}"))
        })
    }

    fn scalar_type(&self) -> Result<(char, char, usize)> {
        let mut chars = self.type_str.chars();
        let endian = chars.next().unwrap_or('?');
        let kind = chars.next().unwrap_or('?');
        let size: usize = chars
            .as_str()
            .parse()
            .map_err(|_| self.error(format!("has unsupported dtype {}", self.type_str)))?;
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(self.error(format!("has unsupported dtype {}", self.type_str)));
        }
        Ok((endian, kind, size))
    }

    fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::file(self.path, format!("array '{}' {message}", self.name))
    }

    fn read_exact(&mut self, out: &mut [u8]) -> Result<()> {
        self.entry.read_exact(out).map_err(|e| {
            Error::file(self.path, format!("array '{}' is truncated or corrupt: {e}", self.name))
        })
    }

    /// Reads the next row (all elements after the first axis) as raw bytes into `out`.
    pub fn read_row(&mut self, out: &mut [u8]) -> Result<()> {
        if self.rows_read >= self.shape.first().copied().unwrap_or(0) {
            return Err(self.error("has no more rows"));
        }
        self.read_exact(out)?;
        self.rows_read += 1;
        Ok(())
    }
}
