//! llama2.c files that run.c could not use are refused with a reason, never a panic or a
//! wrapped size: a header whose sizes overflow, a tokenizer too small for run.c's byte fallback.

use infoplane_runtime::llama2c::{read_checkpoint, Llama2cTokenizer};

#[test]
fn a_header_whose_sizes_overflow_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // Every value passes the per-field limit (2^24), but dim² × layers does not fit in 64 bits.
    let big = 1i32 << 24;
    let header: Vec<u8> = [big, big, big, 2, 2, big, big].iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = tmp.path().join("huge.bin");
    std::fs::write(&path, header).unwrap();
    let e = read_checkpoint(&path).expect_err("refused").to_string();
    assert!(e.contains("huge.bin") && e.contains("overflow"), "{e}");
}

/// A tokenizer file of `pieces` (scores 0).
fn tokenizer(path: &std::path::Path, pieces: &[&[u8]]) {
    let mut b = 8i32.to_le_bytes().to_vec();
    for p in pieces {
        b.extend(0f32.to_le_bytes());
        b.extend((p.len() as i32).to_le_bytes());
        b.extend(*p);
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_vocabulary_without_room_for_the_byte_fallback_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tok40.bin");
    let letters: Vec<Vec<u8>> = (0..37u8).map(|i| vec![b'a' + i % 26, b'0' + i / 26]).collect();
    let mut pieces: Vec<&[u8]> = vec![b"<unk>", b"<s>", b"</s>"];
    pieces.extend(letters.iter().map(|p| p.as_slice()));
    pieces[10] = b" ";
    tokenizer(&path, &pieces);
    match Llama2cTokenizer::read(&path, 40) {
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("tok40.bin") && e.contains("259"), "{e}");
        }
        // Before: accepted, and "é" (no token) fell back to ids 198 and 172, beyond the 40 pieces.
        Ok(tok) => panic!("a 40-token vocabulary was accepted; encode gives {:?}", tok.encode("é", false)),
    }
}

/// The header's max_token_length is not trusted: 2^31 − 1 there made every encode allocate
/// 4 GiB for its merge buffer (found by the llama2c_tokenizer fuzz target as an out-of-memory).
#[test]
fn a_lying_max_token_length_is_not_used_to_allocate() {
    let tmp = tempfile::tempdir().unwrap();
    let real = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/stories260K/tok512.bin");
    let mut lying = std::fs::read(&real).unwrap();
    lying[..4].copy_from_slice(&i32::MAX.to_le_bytes());
    let path = tmp.path().join("tok512.bin");
    std::fs::write(&path, lying).unwrap();
    let tok = Llama2cTokenizer::read(&path, 512).unwrap();
    let honest = Llama2cTokenizer::read(&real, 512).unwrap();
    assert!(tok.max_token_length < 64, "{}", tok.max_token_length);
    assert_eq!(tok.encode("Once upon a time", true), honest.encode("Once upon a time", true));
}
