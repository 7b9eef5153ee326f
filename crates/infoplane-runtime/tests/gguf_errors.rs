//! GGUF tensor infos whose dimensions multiply past 2^64, or to zero, are refused when the file is
//! opened (candle's reader multiplied them unchecked: a panic with overflow checks, a wrapped small
//! size without; and cast an empty tensor's dangling pointer to its block type). Both found by the
//! gguf fuzz target.

use infoplane_runtime::gguf::GgufFile;

/// A GGUF v3 file: `general.architecture = llama` and one F32 tensor of dimensions `dims`.
fn gguf(path: &std::path::Path, dims: &[u64], data_bytes: usize) {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    let s = |b: &mut Vec<u8>, t: &str| {
        b.extend((t.len() as u64).to_le_bytes());
        b.extend(t.as_bytes());
    };
    s(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    s(&mut b, "llama");
    s(&mut b, "token_embd.weight");
    b.extend((dims.len() as u32).to_le_bytes());
    for d in dims {
        b.extend(d.to_le_bytes());
    }
    b.extend(0u32.to_le_bytes()); // F32
    b.extend(0u64.to_le_bytes());
    while !b.len().is_multiple_of(32) {
        b.push(0);
    }
    b.extend(vec![0u8; data_bytes]);
    std::fs::write(path, b).unwrap();
}

#[test]
fn tensor_dimensions_that_overflow_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = tmp.path().join("ok.gguf");
    gguf(&ok, &[4, 2], 32);
    let g = GgufFile::open(&ok).unwrap();
    assert_eq!(g.dequantize("token_embd.weight").unwrap().dims(), [2, 4]);

    // 2^33 × 2^33 × 4 wraps to 0 bytes in 64 bits.
    let huge = tmp.path().join("huge.gguf");
    gguf(&huge, &[1 << 33, 1 << 33], 32);
    let e = GgufFile::open(&huge).err().map(|e| e.to_string()).unwrap_or_else(|| "opened".into());
    assert!(e.contains("huge.gguf") && e.contains("tensor token_embd.weight") && e.contains("overflow"), "{e}");

    // A tensor with a zero dimension: no elements, and a dangling pointer in candle's reader.
    let empty = tmp.path().join("empty.gguf");
    gguf(&empty, &[0, 4], 0);
    let e = GgufFile::open(&empty).err().map(|e| e.to_string()).unwrap_or_else(|| "opened".into());
    assert!(e.contains("empty.gguf") && e.contains("tensor token_embd.weight: dimensions [4, 0] hold no elements"), "{e}");
}
