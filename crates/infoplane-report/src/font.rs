//! The one font every plot uses, embedded so that PNGs look the same on every machine and no
//! system font library (fontconfig, freetype) is linked.

use plotters::style::{register_font, FontStyle};
use std::sync::Once;

/// DejaVu Sans (Bitstream Vera licence, fonts/LICENSE-DejaVu.txt).
static DEJAVU_SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// The family name plots ask for. SVG text names it too, so browsers use their own sans-serif.
pub const FAMILY: &str = "sans-serif";

/// Registers the font once per process (plotters keeps a global table).
pub fn ensure_registered() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font fixed at build time; a failure here is a build defect.
        if register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_err() {
            panic!("the embedded DejaVu Sans font could not be parsed");
        }
    });
}
