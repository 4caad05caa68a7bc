//! `checkpoint.bin`: named sections (the train state, each network's weights, each
//! optimiser's state, the prior), each with its CRC-32, written atomically. Inference reads
//! the weight sections alone; a truncated or corrupt file is an error naming it and the
//! section, never garbage weights.
//!
//! Layout: the magic `RLTCKPT2`; the header's length (u32, little-endian); the header, JSON
//! `[{"name", "len", "crc32"}, …]`; the header's CRC-32 (u32); then the sections' bytes in
//! header order.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::data::images::write_atomic;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"RLTCKPT2";

/// The sections' names. The methods write them; inference reads the weights and the prior.
pub mod sections {
    /// The [`crate::inference::TrainState`].
    pub const STATE: &str = "state";
    /// The AbsAE's prior in force (JSON).
    pub const PRIOR: &str = "prior";
    pub const AUTOENCODER: &str = "autoencoder";
    pub const DISCRIMINATOR: &str = "discriminator";
    pub const RELATIONAL_LEARNER: &str = "relational_learner";
    /// The baselines' VAE.
    pub const VAE: &str = "vae";
    /// FactorVAE's total-correlation discriminator.
    pub const TC_DISCRIMINATOR: &str = "tc_discriminator";

    /// The optimiser state of the network in section `network`.
    pub fn optimizer(network: &str) -> String {
        format!("adam.{network}")
    }
}
/// Longest header read: far more than any checkpoint's few sections need, so a corrupt length
/// cannot make the reader allocate.
const MAX_HEADER: usize = 1 << 20;

#[derive(Serialize, Deserialize)]
struct SectionHeader {
    name: String,
    len: u64,
    crc32: u32,
}

/// A checkpoint's sections, being written or read back.
#[derive(Default)]
pub struct Checkpoint {
    path: PathBuf,
    sections: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    /// An empty checkpoint to be written to `path`.
    pub fn new(path: &Path) -> Checkpoint {
        Checkpoint { path: path.to_path_buf(), sections: Vec::new() }
    }

    /// Adds a section of raw bytes.
    pub fn add(&mut self, name: &str, bytes: Vec<u8>) {
        self.sections.push((name.to_string(), bytes));
    }

    /// Adds a value as JSON.
    pub fn add_json(&mut self, name: &str, value: &impl Serialize) {
        self.add(name, serde_json::to_vec(value).expect("checkpoint values serialise"));
    }

    /// Adds a module's weights (an inference-mode module: `valid()` of a trained one, which
    /// folds batch norm's pending running-statistics update into its value).
    pub fn add_module<M: Module>(&mut self, name: &str, module: M) -> Result<()> {
        let bytes = module.into_record().into_bytes().map_err(|e| self.serialise_error(e))?;
        self.add(name, bytes.to_vec());
        Ok(())
    }

    /// Adds an optimiser's state.
    pub fn add_optimizer(&mut self, name: &str, optimizer: &ModuleOptimizer) -> Result<()> {
        let bytes = optimizer.into_bytes().map_err(|e| self.serialise_error(e))?;
        self.add(name, bytes.to_vec());
        Ok(())
    }

    fn serialise_error(&self, e: impl std::fmt::Display) -> Error {
        Error::file(&self.path, format!("cannot serialise checkpoint: {e}"))
    }

    /// Writes the checkpoint atomically.
    pub fn write(&self) -> Result<()> {
        let header: Vec<SectionHeader> = self
            .sections
            .iter()
            .map(|(name, bytes)| SectionHeader {
                name: name.clone(),
                len: bytes.len() as u64,
                crc32: crc32fast::hash(bytes),
            })
            .collect();
        let header = serde_json::to_vec(&header).expect("headers serialise");
        let mut out = MAGIC.to_vec();
        out.extend((header.len() as u32).to_le_bytes());
        out.extend(&header);
        out.extend(crc32fast::hash(&header).to_le_bytes());
        for (_, bytes) in &self.sections {
            out.extend(bytes);
        }
        write_atomic(&self.path, &out)
    }

    /// Reads and checks the checkpoint at `path`.
    pub fn read(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
        let sections = parse(&bytes)
            .map_err(|problem| Error::file(path, format!("corrupt checkpoint: {problem}")))?;
        Ok(Checkpoint { path: path.to_path_buf(), sections })
    }

    /// The bytes of section `name`.
    pub fn section(&self, name: &str) -> Result<&[u8]> {
        self.sections.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice()).ok_or_else(|| {
            Error::file(
                &self.path,
                format!(
                    "checkpoint has no section '{name}' (written by another model or version?)"
                ),
            )
        })
    }

    /// Section `name` read as JSON.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        serde_json::from_slice(self.section(name)?).map_err(|e| self.corrupt(name, e))
    }

    /// `module` with the weights of section `name`.
    pub fn load_module<M: Module>(&self, name: &str, module: M) -> Result<M> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.section(name)?.to_vec()))
            .map_err(|e| self.corrupt(name, e))?;
        module.try_load_record(record).map_err(|e| self.corrupt(name, e))
    }

    /// `optimizer` with the state of section `name`.
    pub fn load_optimizer(
        &self,
        name: &str,
        optimizer: ModuleOptimizer,
    ) -> Result<ModuleOptimizer> {
        optimizer
            .from_bytes(Bytes::from_bytes_vec(self.section(name)?.to_vec()))
            .map_err(|e| self.corrupt(name, e))
    }

    fn corrupt(&self, name: &str, e: impl std::fmt::Display) -> Error {
        Error::file(&self.path, format!("corrupt checkpoint: section '{name}': {e}"))
    }
}

/// The sections of a checkpoint file's bytes, or what is wrong with them.
fn parse(bytes: &[u8]) -> std::result::Result<Vec<(String, Vec<u8>)>, String> {
    if bytes.get(..8) != Some(MAGIC.as_slice()) {
        return Err("not a relatent checkpoint (or one of an older version)".into());
    }
    let word = |at: usize| {
        bytes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let header_len = word(8).ok_or("truncated header")? as usize;
    if header_len > MAX_HEADER {
        return Err(format!("header length {header_len} is not plausible"));
    }
    let header = bytes.get(12..12 + header_len).ok_or("truncated header")?;
    if word(12 + header_len).ok_or("truncated header")? != crc32fast::hash(header) {
        return Err("the header fails its checksum".into());
    }
    let headers: Vec<SectionHeader> =
        serde_json::from_slice(header).map_err(|e| format!("unreadable header: {e}"))?;
    let mut at = 16 + header_len;
    let mut sections = Vec::with_capacity(headers.len());
    for h in headers {
        let len =
            usize::try_from(h.len).map_err(|_| format!("section '{}' is too long", h.name))?;
        let body = at
            .checked_add(len)
            .and_then(|end| bytes.get(at..end))
            .ok_or_else(|| format!("section '{}' is truncated", h.name))?;
        if crc32fast::hash(body) != h.crc32 {
            return Err(format!("section '{}' fails its checksum", h.name));
        }
        sections.push((h.name, body.to_vec()));
        at += len;
    }
    if at != bytes.len() {
        return Err(format!("{} bytes after the last section", bytes.len() - at));
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(dir: &Path) -> PathBuf {
        let path = dir.join("checkpoint.bin");
        let mut c = Checkpoint::new(&path);
        c.add("state", b"{\"step\":3}".to_vec());
        c.add("weights", (0..=255u8).collect());
        c.write().unwrap();
        path
    }

    #[test]
    fn sections_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoint::read(&written(dir.path())).unwrap();
        assert_eq!(c.section("weights").unwrap(), (0..=255u8).collect::<Vec<_>>());
        assert_eq!(c.json::<serde_json::Value>("state").unwrap()["step"], 3);
        let err = c.section("prior").unwrap_err().to_string();
        assert!(err.contains("checkpoint.bin") && err.contains("'prior'"), "{err}");
    }

    #[test]
    fn every_flip_and_truncation_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let good = std::fs::read(&path).unwrap();
        let broken = dir.path().join("broken.bin");
        for i in 0..good.len() {
            for bad in [good[..i].to_vec(), {
                let mut b = good.clone();
                b[i] ^= 0x10;
                b
            }] {
                std::fs::write(&broken, &bad).unwrap();
                let err = Checkpoint::read(&broken)
                    .err()
                    .unwrap_or_else(|| panic!("byte {i} accepted"))
                    .to_string();
                assert!(err.contains("broken.bin") && err.contains("corrupt checkpoint"), "{err}");
            }
        }
    }
}
