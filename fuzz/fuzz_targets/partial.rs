//! Partial statistics: `decode_partial` on any bytes, then `Accumulator::from_partial` (which must
//! refuse whatever is inconsistent), the estimate, a merge with itself, and a re-encoding that
//! decodes and loads again. Nothing may panic.
#![no_main]

use infoplane_estimator::Accumulator;
use infoplane_store::{decode_partial, encode_partial};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = decode_partial(data) else { return };
    let Ok(acc) = Accumulator::from_partial(p) else { return };
    let first = acc.estimate();
    let mut doubled = acc.clone();
    if doubled.merge(&acc).is_ok() {
        let _ = doubled.estimate();
    }
    if let Ok(q) = acc.to_partial() {
        let bytes = encode_partial(&q);
        let q2 = decode_partial(&bytes).expect("an encoded partial decodes");
        assert_eq!(format!("{q:?}"), format!("{q2:?}"), "encode/decode is not a round trip");
        let again = Accumulator::from_partial(q2).expect("a partial this build wrote loads");
        // Same sums, same estimate (Debug text: NaN-safe).
        assert_eq!(format!("{:?}", first.ok()), format!("{:?}", again.estimate().ok()));
    }
});
