//! safetensors files with the same bytes on every run. `safetensors::serialize` takes the metadata
//! as a `HashMap`, whose order (and so the header's bytes) changes from process to process; this
//! writer emits the header from sorted maps instead. The layout is the format's: an 8-byte
//! little-endian header length, the JSON header padded with spaces to a multiple of 8, then the
//! tensors' bytes back to back (widest dtypes first, so every tensor stays aligned).

use safetensors::tensor::Dtype;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One tensor: name, dtype, shape and its little-endian bytes (their length must fit the shape).
pub(crate) struct StTensor<'a> {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: &'a [u8],
}

pub(crate) fn safetensors_bytes(mut tensors: Vec<StTensor<'_>>, metadata: &BTreeMap<String, String>) -> Vec<u8> {
    tensors.sort_by(|a, b| b.dtype.bitsize().cmp(&a.dtype.bitsize()).then_with(|| a.name.cmp(&b.name)));
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    entries.insert("__metadata__".into(), Value::Object(metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect()));
    let mut at = 0usize;
    for t in &tensors {
        assert_eq!(t.shape.iter().product::<usize>() * t.dtype.bitsize(), t.bytes.len() * 8, "tensor {} bytes do not fit its shape", t.name);
        entries.insert(t.name.clone(), json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [at, at + t.bytes.len()]}));
        at += t.bytes.len();
    }
    // Inserted in sorted order, so the text is the same whether or not serde_json preserves
    // insertion order (a feature any crate in the build may switch on).
    let header: Map<String, Value> = entries.into_iter().collect();
    let mut text = serde_json::to_vec(&Value::Object(header)).expect("a JSON header");
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + text.len() + at);
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text);
    for t in &tensors {
        out.extend_from_slice(t.bytes);
    }
    out
}
