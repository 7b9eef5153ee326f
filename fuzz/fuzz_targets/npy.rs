//! `.npy` parsing: `parse_npy` (bytes) and `read_npy` (the file reader the CLI uses, which reads
//! the header and the data separately) must never panic and must agree; a float32 array written
//! back by `write_npy_f32` reads back bit for bit.
#![no_main]

use infoplane_store::{parse_npy, read_npy, write_npy_f32, NpyData};
use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;

fn len(d: &NpyData) -> usize {
    match d {
        NpyData::F32(v) => v.len(),
        NpyData::F16(v) => v.len(),
        NpyData::F64(v) => v.len(),
        NpyData::I64(v) => v.len(),
        NpyData::I32(v) => v.len(),
        NpyData::I16(v) => v.len(),
        NpyData::I8(v) => v.len(),
        NpyData::U64(v) => v.len(),
        NpyData::U32(v) => v.len(),
        NpyData::U16(v) => v.len(),
        NpyData::U8(v) => v.len(),
    }
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse_npy(data);
    let path = scratch::file("a.npy", data);
    let read = read_npy(&path);
    match (&parsed, &read) {
        // Debug text compares NaNs as equal (PartialEq would not).
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "parse_npy and read_npy read different arrays"),
        (Err(_), Err(_)) => {}
        _ => panic!("parse_npy and read_npy disagree: {parsed:?} vs {read:?}"),
    }
    let Ok(a) = parsed else { return };
    assert_eq!(a.shape.iter().product::<usize>(), len(&a.data), "element count differs from the shape");
    let _ = a.data.to_i64();
    if let NpyData::F32(v) = &a.data {
        let out = scratch::dir().join("b.npy");
        write_npy_f32(&out, &a.shape, v).expect("write");
        let back = read_npy(&out).expect("our own file reads back");
        assert_eq!(back.shape, a.shape);
        match back.data {
            NpyData::F32(w) => assert!(w.iter().zip(v).all(|(x, y)| x.to_bits() == y.to_bits())),
            other => panic!("wrote float32, read {}", other.dtype()),
        }
    }
});
