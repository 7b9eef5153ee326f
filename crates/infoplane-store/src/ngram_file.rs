//! A plan's n-gram counts on disk: safetensors with, per order k, `order{k}.tokens` (u32, flat
//! k-token keys) and `order{k}.counts` (u64), and the totals in the metadata.

use crate::{write_atomic, StoreError};
use infoplane_labels::{NgramCounts, NgramParts};
use crate::st_bytes::{safetensors_bytes, StTensor};
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::Path;

const FORMAT: &str = "infoplane-ngram-counts";

fn bad(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Partial { path: path.to_path_buf(), reason: reason.into() }
}

pub fn write_ngram_counts(path: &Path, counts: &NgramCounts) -> Result<(), StoreError> {
    let parts = counts.to_parts();
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = parts
        .tables
        .iter()
        .enumerate()
        .flat_map(|(i, (tokens, values))| {
            let k = i + 1;
            [
                (format!("order{k}.tokens"), Dtype::U32, vec![tokens.len()], bytemuck::cast_slice::<u32, u8>(tokens).to_vec()),
                (format!("order{k}.counts"), Dtype::U64, vec![values.len()], bytemuck::cast_slice::<u64, u8>(values).to_vec()),
            ]
        })
        .collect();
    let views = bytes.iter().map(|(name, dtype, shape, data)| StTensor { name: name.clone(), dtype: *dtype, shape: shape.clone(), bytes: data }).collect();
    let metadata: BTreeMap<String, String> = [
        ("format".to_string(), FORMAT.to_string()),
        ("orders".to_string(), parts.orders.to_string()),
        ("documents".to_string(), parts.documents.to_string()),
        ("tokens".to_string(), parts.tokens.to_string()),
    ]
    .into();
    // Byte-identical on every run (safetensors::serialize orders the metadata by a HashMap).
    write_atomic(path, &safetensors_bytes(views, &metadata))
}

pub fn read_ngram_counts(path: &Path) -> Result<NgramCounts, StoreError> {
    let bytes = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(path, format!("not {FORMAT}")));
    }
    let number = |key: &str| -> Result<u64, StoreError> { meta.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| bad(path, format!("metadata {key} missing or not a number"))) };
    let orders = number("orders")? as usize;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(path, e.to_string()))?;
    let mut tables = Vec::with_capacity(orders.min(64));
    for k in 1..=orders {
        let get = |name: String, dtype: Dtype| -> Result<Vec<u8>, StoreError> {
            let t = tensors.tensor(&name).map_err(|_| bad(path, format!("tensor {name} missing")))?;
            if t.dtype() != dtype {
                return Err(bad(path, format!("tensor {name} is {:?}, expected {dtype:?}", t.dtype())));
            }
            Ok(t.data().to_vec())
        };
        let tokens: Vec<u32> = get(format!("order{k}.tokens"), Dtype::U32)?.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        let counts: Vec<u64> = get(format!("order{k}.counts"), Dtype::U64)?.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
        tables.push((tokens, counts));
    }
    let parts = NgramParts { orders, documents: number("documents")?, tokens: number("tokens")?, tables };
    NgramCounts::from_parts(parts).map_err(|e| bad(path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_trip_and_damage_is_named() {
        let docs: Vec<Vec<u32>> = vec![(0..40).map(|i| i % 7).collect(), (0..30).map(|i| (i * i) % 11).collect()];
        let counts = NgramCounts::from_documents(4, &docs).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        write_ngram_counts(&path, &counts).unwrap();
        let back = read_ngram_counts(&path).unwrap();
        assert_eq!(back.to_parts(), counts.to_parts());
        // The same counts, the same bytes (metadata used to follow a HashMap's order).
        let first = std::fs::read(&path).unwrap();
        for _ in 0..6 {
            write_ngram_counts(&path, &counts).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), first);
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, bytes).unwrap();
        let err = read_ngram_counts(&path).err().unwrap().to_string();
        assert!(err.contains("c.safetensors"), "{err}");
    }
}
