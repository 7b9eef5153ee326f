//! NumPy `.npy` (format 1.0–3.0): little-endian numeric arrays in C order. Anything else is an
//! error that says what was found.

use crate::{write_atomic_with, StoreError};
use half::f16;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    F32(Vec<f32>),
    F16(Vec<f16>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    I16(Vec<i16>),
    I8(Vec<i8>),
    U64(Vec<u64>),
    U32(Vec<u32>),
    U16(Vec<u16>),
    U8(Vec<u8>),
}

impl NpyData {
    /// numpy's spelling of the dtype, for messages.
    pub fn dtype(&self) -> &'static str {
        match self {
            NpyData::F32(_) => "float32",
            NpyData::F16(_) => "float16",
            NpyData::F64(_) => "float64",
            NpyData::I64(_) => "int64",
            NpyData::I32(_) => "int32",
            NpyData::I16(_) => "int16",
            NpyData::I8(_) => "int8",
            NpyData::U64(_) => "uint64",
            NpyData::U32(_) => "uint32",
            NpyData::U16(_) => "uint16",
            NpyData::U8(_) => "uint8",
        }
    }

    /// The values as i64 when the dtype is an integer type (uint64 above i64::MAX is refused).
    pub fn to_i64(&self) -> Option<Result<Vec<i64>, String>> {
        let v = match self {
            NpyData::I64(v) => v.clone(),
            NpyData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::I16(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::I8(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::U32(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::U16(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::U64(v) => {
                return Some(
                    v.iter()
                        .map(|&x| i64::try_from(x).map_err(|_| format!("uint64 value {x} does not fit in int64")))
                        .collect(),
                )
            }
            _ => return None,
        };
        Some(Ok(v))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

/// Reads a `.npy` file straight into a typed buffer (no second copy of the data).
pub fn read_npy(path: &Path) -> Result<NpyArray, StoreError> {
    use std::io::Read;
    let io = |e| StoreError::io(path, e);
    let bad = |reason: String| StoreError::Npy { path: path.to_path_buf(), reason };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    // The preamble says how long the header is; then the header says how long the data must be.
    let mut prefix = vec![0u8; 12.min(file_len as usize)];
    file.read_exact(&mut prefix).map_err(io)?;
    let header_end = header_end(&prefix).map_err(bad)?;
    if header_end as u64 > file_len {
        return Err(bad("header runs past the end of the file".into()));
    }
    prefix.resize(header_end, 0);
    file.read_exact(&mut prefix[12.min(header_end)..]).map_err(io)?;
    let header = parse_header(&prefix).map_err(bad)?;
    let body_len = file_len - header_end as u64;
    if body_len != header.data_bytes as u64 {
        return Err(bad(format!("shape {:?} of {} needs {} data bytes, the file has {body_len}", header.shape, header.descr, header.data_bytes)));
    }
    let data = read_body(header.kind, header.count, &mut file).map_err(io)?;
    Ok(NpyArray { shape: header.shape, data })
}

/// Parses the bytes of a `.npy` file. Never panics; every refusal says why.
pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray, String> {
    let header = parse_header(bytes)?;
    let body = &bytes[header_end(bytes)?..];
    if body.len() != header.data_bytes {
        return Err(format!("shape {:?} of {} needs {} data bytes, the file has {}", header.shape, header.descr, header.data_bytes, body.len()));
    }
    let data = read_body(header.kind, header.count, &mut &body[..]).map_err(|e| e.to_string())?;
    Ok(NpyArray { shape: header.shape, data })
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    F32,
    F16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
}

struct Header {
    descr: String,
    kind: Kind,
    shape: Vec<usize>,
    count: usize,
    data_bytes: usize,
}

/// Where the header ends (the data starts), from the 10- or 12-byte preamble.
fn header_end(bytes: &[u8]) -> Result<usize, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("missing the \\x93NUMPY magic".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(format!("unsupported format version {v}")),
    };
    start.checked_add(len).ok_or_else(|| "header length overflows".to_string())
}

/// The dtype and shape from a header (`bytes` holds at least the whole header).
fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    let end = header_end(bytes)?;
    let start = if bytes[6] == 1 { 10 } else { 12 };
    if end > bytes.len() {
        return Err("header runs past the end of the file".into());
    }
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| "header is not text")?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order").ok_or("header has no 'fortran_order'")?;
    if fortran.trim() != "False" {
        return Err("Fortran-ordered arrays are not supported (save with np.ascontiguousarray)".into());
    }
    let shape_text = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    let shape_text = shape_text.trim();
    let inner = shape_text.strip_prefix('(').and_then(|s| s.strip_suffix(')')).ok_or_else(|| format!("bad shape {shape_text}"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>().map_err(|_| format!("bad shape {shape_text}")))
        .collect::<Result<Vec<_>, _>>()?;
    let count = shape.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).ok_or("shape overflows")?;
    let code = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') => descr.get(1..).unwrap_or(""),
        Some(b'>') => return Err(format!("big-endian dtype {descr} is not supported")),
        _ => return Err(format!("unsupported dtype {descr}")),
    };
    let (kind, size) = match code {
        "f4" => (Kind::F32, 4),
        "f2" => (Kind::F16, 2),
        "f8" => (Kind::F64, 8),
        "i8" => (Kind::I64, 8),
        "i4" => (Kind::I32, 4),
        "i2" => (Kind::I16, 2),
        "i1" => (Kind::I8, 1),
        "u8" => (Kind::U64, 8),
        "u4" => (Kind::U32, 4),
        "u2" => (Kind::U16, 2),
        "u1" | "b1" => (Kind::U8, 1),
        _ => return Err(format!("unsupported dtype {descr}")),
    };
    let data_bytes = count.checked_mul(size).ok_or("shape overflows")?;
    Ok(Header { descr: descr.to_string(), kind, shape, count, data_bytes })
}

/// Reads `count` little-endian values of `kind` into their own typed vector.
fn read_body(kind: Kind, count: usize, reader: &mut impl std::io::Read) -> std::io::Result<NpyData> {
    fn fill<T: bytemuck::Pod + Default>(count: usize, reader: &mut impl std::io::Read, from_le: impl Fn(T) -> T) -> std::io::Result<Vec<T>> {
        let mut v = vec![T::default(); count];
        reader.read_exact(bytemuck::cast_slice_mut(&mut v))?;
        if cfg!(target_endian = "big") {
            v.iter_mut().for_each(|x| *x = from_le(*x));
        }
        Ok(v)
    }
    Ok(match kind {
        Kind::F32 => NpyData::F32(fill(count, reader, |x: f32| f32::from_bits(u32::from_le(x.to_bits())))?),
        Kind::F16 => NpyData::F16(fill(count, reader, |x: f16| f16::from_bits(u16::from_le(x.to_bits())))?),
        Kind::F64 => NpyData::F64(fill(count, reader, |x: f64| f64::from_bits(u64::from_le(x.to_bits())))?),
        Kind::I64 => NpyData::I64(fill(count, reader, i64::from_le)?),
        Kind::I32 => NpyData::I32(fill(count, reader, i32::from_le)?),
        Kind::I16 => NpyData::I16(fill(count, reader, i16::from_le)?),
        Kind::I8 => NpyData::I8(fill(count, reader, |x| x)?),
        Kind::U64 => NpyData::U64(fill(count, reader, u64::from_le)?),
        Kind::U32 => NpyData::U32(fill(count, reader, u32::from_le)?),
        Kind::U16 => NpyData::U16(fill(count, reader, u16::from_le)?),
        Kind::U8 => NpyData::U8(fill(count, reader, |x| x)?),
    })
}

/// The text after `'key':` up to the next top-level comma (a tuple counts as one value).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?;
    let mut depth = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    None
}

/// Writes a C-order little-endian float32 array, atomically.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), StoreError> {
    write_npy_le(path, "<f4", shape, data, |v| v.to_le_bytes())
}

/// Writes a C-order little-endian int64 array, atomically.
pub fn write_npy_i64(path: &Path, shape: &[usize], data: &[i64]) -> Result<(), StoreError> {
    write_npy_le(path, "<i8", shape, data, |v| v.to_le_bytes())
}

/// The one .npy writer: format 1.0 header for `descr`, then each element's little-endian bytes.
fn write_npy_le<T: Copy, const B: usize>(path: &Path, descr: &str, shape: &[usize], data: &[T], bytes: impl Fn(T) -> [u8; B]) -> Result<(), StoreError> {
    assert_eq!(shape.iter().product::<usize>(), data.len(), "shape does not match data");
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so the data starts on a 64-byte boundary, newline-terminated, as numpy does.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    write_atomic_with(path, |w| {
        w.write_all(b"\x93NUMPY\x01\x00")?;
        w.write_all(&(header.len() as u16).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        for &v in data {
            w.write_all(&bytes(v))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        write_npy_f32(&path, &[3, 4], &data).unwrap();
        let back = read_npy(&path).unwrap();
        assert_eq!(back.shape, vec![3, 4]);
        assert_eq!(back.data, NpyData::F32(data));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        assert!(parse_npy(&bytes).unwrap_err().contains("needs 48 data bytes"));
        assert!(parse_npy(b"hello").is_err());
        let lying = b"\x93NUMPY\x01\x00\xff\xff{'descr'";
        assert!(parse_npy(lying).is_err());
    }

    #[test]
    fn i64_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.npy");
        let data: Vec<i64> = vec![0, 1, -5, i64::MAX, 49151];
        write_npy_i64(&path, &[5], &data).unwrap();
        let back = read_npy(&path).unwrap();
        assert_eq!(back.shape, vec![5]);
        assert_eq!(back.data, NpyData::I64(data));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut with_magic = b"\x93NUMPY\x01\x00".to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = parse_npy(&bytes);
            let _ = parse_npy(&with_magic);
        }
    }
}
