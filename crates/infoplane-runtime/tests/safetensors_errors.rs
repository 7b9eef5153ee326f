//! A safetensors header that lies (a shape that does not fit its byte range, offsets past the
//! end, a file cut short) is refused with the tensor named, not only "invalid shape, data type,
//! or offset for tensor".

use infoplane_runtime::hf::read_safetensors;

/// A safetensors file of f32 tensors `(name, shape, values)` with the header edited by `edit`.
fn file(dir: &std::path::Path, name: &str, tensors: &[(&str, Vec<usize>, usize)], edit: impl FnOnce(&mut serde_json::Value)) -> std::path::PathBuf {
    let mut header = serde_json::json!({});
    let mut data = Vec::new();
    for (t, shape, n) in tensors {
        let start = data.len();
        data.extend((0..*n).flat_map(|i| (i as f32).to_le_bytes()));
        header[*t] = serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]});
    }
    edit(&mut header);
    let mut text = serde_json::to_vec(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend(text);
    bytes.extend(data);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn refusal(path: &std::path::Path) -> String {
    read_safetensors(&[path.to_path_buf()]).expect_err("refused").to_string()
}

#[test]
fn a_lying_header_names_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let tensors = [("a.weight", vec![2, 3], 6), ("b.weight", vec![4], 4)];
    let good = file(d, "good.safetensors", &tensors, |_| {});
    assert_eq!(read_safetensors(&[good]).unwrap().len(), 2);

    let shape = file(d, "shape.safetensors", &tensors, |h| h["b.weight"]["shape"] = serde_json::json!([5]));
    let e = refusal(&shape);
    assert!(e.contains("shape.safetensors") && e.contains("tensor `b.weight`: shape [5] of F32 needs 20 bytes, its data_offsets [24, 40] hold 16"), "{e}");

    let past = file(d, "past.safetensors", &tensors, |h| {
        h["b.weight"]["data_offsets"] = serde_json::json!([24, 4024]);
        h["b.weight"]["shape"] = serde_json::json!([1000]);
    });
    let e = refusal(&past);
    assert!(e.contains("tensor `b.weight`: data_offsets [24, 4024] reach past the 40 bytes of data"), "{e}");

    let bytes = std::fs::read(d.join("good.safetensors")).unwrap();
    std::fs::write(d.join("cut.safetensors"), &bytes[..bytes.len() - 8]).unwrap();
    let e = refusal(&d.join("cut.safetensors"));
    assert!(e.contains("tensor `b.weight`: data_offsets [24, 40] reach past the 32 bytes of data"), "{e}");

    // A header length beyond the file is refused as before (no tensor to name).
    let mut long = bytes.clone();
    long[..8].copy_from_slice(&(bytes.len() as u64 + 100).to_le_bytes());
    std::fs::write(d.join("long.safetensors"), long).unwrap();
    let e = refusal(&d.join("long.safetensors"));
    assert!(e.contains("long.safetensors: not a valid safetensors file"), "{e}");
}
