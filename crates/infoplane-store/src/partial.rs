//! Partial statistics on disk: a safetensors file (readable by any safetensors library) whose
//! metadata holds `format = infoplane-partial`, `format_version`, and the settings as JSON, and
//! whose tensors hold the sums. Self-describing: a reader needs nothing else to merge it.

use crate::{write_atomic, StoreError};
use infoplane_estimator::{LabelSetSpec, PartialLabelSet, PartialSide, PartialState, Settings};
use crate::st_bytes::{safetensors_bytes, StTensor};
use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const FORMAT: &str = "infoplane-partial";

#[derive(Serialize, Deserialize)]
struct Header {
    settings: Settings,
    positions: u64,
    label_sets: Vec<SetHeader>,
}

#[derive(Serialize, Deserialize)]
struct SetHeader {
    spec: LabelSetSpec,
    counts_complete: bool,
    fingerprint: Option<String>,
    real: SideHeader,
    null: Option<SideHeader>,
}

#[derive(Serialize, Deserialize)]
struct SideHeader {
    singleton_h_sum: f64,
    singleton_count: u64,
}

struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn le_bytes<T: Copy + bytemuck::Pod, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    // On little-endian machines the in-memory bytes are the file's: one copy, no per-value work
    // (a partial at scale holds gigabytes of sums).
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice(v).to_vec()
    } else {
        v.iter().flat_map(|&x| f(x)).collect()
    }
}

/// The partial as file bytes.
pub fn encode_partial(p: &PartialState) -> Vec<u8> {
    let mut tensors: Vec<(String, Tensor)> = vec![(
        "counts".into(),
        Tensor { dtype: Dtype::F64, shape: vec![p.counts.len()], bytes: le_bytes(&p.counts, f64::to_le_bytes) },
    )];
    let n = p.settings.n_bins;
    let mut push = |name: String, dtype, shape, bytes| tensors.push((name, Tensor { dtype, shape, bytes }));
    for (i, set) in p.label_sets.iter().enumerate() {
        push(format!("set{i}.key_values"), Dtype::I64, vec![set.key_values.len()], le_bytes(&set.key_values, i64::to_le_bytes));
        push(format!("set{i}.key_offsets"), Dtype::U64, vec![set.key_offsets.len()], le_bytes(&set.key_offsets, u64::to_le_bytes));
        push(format!("set{i}.key_counts"), Dtype::U64, vec![set.key_counts.len()], le_bytes(&set.key_counts, u64::to_le_bytes));
        let sides = std::iter::once(("real", &set.real)).chain(set.null.as_ref().map(|s| ("null", s)));
        for (side_name, side) in sides {
            let pre = format!("set{i}.{side_name}");
            push(format!("{pre}.slot_ids"), Dtype::U32, vec![side.slot_ids.len()], le_bytes(&side.slot_ids, u32::to_le_bytes));
            push(format!("{pre}.slot_n"), Dtype::U64, vec![side.slot_n.len()], le_bytes(&side.slot_n, u64::to_le_bytes));
            push(format!("{pre}.sums"), Dtype::F64, vec![side.slot_ids.len(), n], le_bytes(&side.sums, f64::to_le_bytes));
            push(format!("{pre}.singleton_ids"), Dtype::U32, vec![side.singleton_ids.len()], le_bytes(&side.singleton_ids, u32::to_le_bytes));
            push(format!("{pre}.singleton_h"), Dtype::F64, vec![side.singleton_h.len()], le_bytes(&side.singleton_h, f64::to_le_bytes));
        }
    }
    let side_header = |s: &PartialSide| SideHeader { singleton_h_sum: s.singleton_h_sum, singleton_count: s.singleton_count };
    let header = Header {
        settings: p.settings.clone(),
        positions: p.positions,
        label_sets: p
            .label_sets
            .iter()
            .map(|s| SetHeader {
                spec: s.spec.clone(),
                counts_complete: s.counts_complete,
                fingerprint: s.fingerprint.clone(),
                real: side_header(&s.real),
                null: s.null.as_ref().map(side_header),
            })
            .collect(),
    };
    let metadata: BTreeMap<String, String> = [
        ("format".to_string(), FORMAT.to_string()),
        ("format_version".to_string(), p.format_version.to_string()),
        ("header".to_string(), serde_json::to_string(&header).expect("header serialises")),
    ]
    .into();
    let views = tensors.iter().map(|(name, t)| StTensor { name: name.clone(), dtype: t.dtype, shape: t.shape.clone(), bytes: &t.bytes }).collect();
    // Byte-identical on every run (safetensors::serialize orders the metadata by a HashMap).
    safetensors_bytes(views, &metadata)
}

/// Parses partial-file bytes; every refusal says which part is wrong.
pub fn decode_partial(bytes: &[u8]) -> Result<PartialState, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(format!("metadata 'format' is {:?}, expected {FORMAT:?}", meta.get("format")));
    }
    let version: u32 = meta.get("format_version").and_then(|v| v.parse().ok()).ok_or("metadata 'format_version' is missing or not a number")?;
    let header: Header = serde_json::from_str(meta.get("header").ok_or("metadata 'header' is missing")?).map_err(|e| format!("metadata 'header': {e}"))?;
    let get = |name: &str, dtype: Dtype| -> Result<Vec<u8>, String> {
        let t = st.tensor(name).map_err(|_| format!("tensor {name:?} is missing"))?;
        if t.dtype() != dtype {
            return Err(format!("tensor {name:?} has dtype {:?}, expected {dtype:?}", t.dtype()));
        }
        Ok(t.data().to_vec())
    };
    let f64s = |name: &str| get(name, Dtype::F64).map(|b| b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>());
    let u64s = |name: &str| get(name, Dtype::U64).map(|b| b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>());
    let i64s = |name: &str| get(name, Dtype::I64).map(|b| b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>());
    let u32s = |name: &str| get(name, Dtype::U32).map(|b| b.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>());
    let side = |pre: String, h: &SideHeader| -> Result<PartialSide, String> {
        Ok(PartialSide {
            slot_ids: u32s(&format!("{pre}.slot_ids"))?,
            slot_n: u64s(&format!("{pre}.slot_n"))?,
            sums: f64s(&format!("{pre}.sums"))?,
            singleton_h_sum: h.singleton_h_sum,
            singleton_count: h.singleton_count,
            singleton_ids: u32s(&format!("{pre}.singleton_ids"))?,
            singleton_h: f64s(&format!("{pre}.singleton_h"))?,
        })
    };
    let mut label_sets = Vec::new();
    for (i, s) in header.label_sets.into_iter().enumerate() {
        label_sets.push(PartialLabelSet {
            key_values: i64s(&format!("set{i}.key_values"))?,
            key_offsets: u64s(&format!("set{i}.key_offsets"))?,
            key_counts: u64s(&format!("set{i}.key_counts"))?,
            real: side(format!("set{i}.real"), &s.real)?,
            null: s.null.as_ref().map(|h| side(format!("set{i}.null"), h)).transpose()?,
            spec: s.spec,
            counts_complete: s.counts_complete,
            fingerprint: s.fingerprint,
        });
    }
    Ok(PartialState { format_version: version, settings: header.settings, positions: header.positions, counts: f64s("counts")?, label_sets })
}

pub fn write_partial(path: &Path, p: &PartialState) -> Result<(), StoreError> {
    write_atomic(path, &encode_partial(p))
}

pub fn read_partial(path: &Path) -> Result<PartialState, StoreError> {
    let bytes = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    decode_partial(&bytes).map_err(|reason| StoreError::Partial { path: path.to_path_buf(), reason })
}
