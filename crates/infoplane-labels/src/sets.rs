//! Label-set identities and their stable names (`in_2`, `out_backoff_3`, …), which become column
//! names and partial-statistics keys, so they never change.

use crate::Backoff;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which side of position i an n-gram sits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// X⁽ᵏ⁾ = (t_{i−k+1}, …, t_i): complexity.
    Input,
    /// Y⁽ᵏ⁾ = (t_{i+1}, …, t_{i+k}): expressivity.
    Output,
}

impl Side {
    pub fn prefix(&self) -> &'static str {
        match self {
            Side::Input => "in",
            Side::Output => "out",
        }
    }
}

/// A fixed n-gram order, or a synchronised back-off level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelKind {
    Fixed,
    Backoff,
}

/// One label set: side, kind, and order (fixed) or level (back-off), 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LabelSetId {
    pub side: Side,
    pub kind: LabelKind,
    pub order: usize,
}

impl LabelSetId {
    /// `in_k`, `out_k`, `in_backoff_k` or `out_backoff_k`.
    pub fn name(&self) -> String {
        match self.kind {
            LabelKind::Fixed => format!("{}_{}", self.side.prefix(), self.order),
            LabelKind::Backoff => format!("{}_backoff_{}", self.side.prefix(), self.order),
        }
    }

    /// The inverse of [`LabelSetId::name`].
    pub fn parse(name: &str) -> Option<Self> {
        let (side, rest) = if let Some(r) = name.strip_prefix("in_") {
            (Side::Input, r)
        } else if let Some(r) = name.strip_prefix("out_") {
            (Side::Output, r)
        } else {
            return None;
        };
        let (kind, digits) = match rest.strip_prefix("backoff_") {
            Some(d) => (LabelKind::Backoff, d),
            None => (LabelKind::Fixed, rest),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
            return None;
        }
        let order = digits.parse().ok()?;
        Some(LabelSetId { side, kind, order })
    }
}

impl fmt::Display for LabelSetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

pub(crate) fn label_sets(orders: usize, backoff: Backoff) -> Vec<LabelSetId> {
    let mut kinds = vec![LabelKind::Fixed];
    if backoff == Backoff::Katz {
        kinds.push(LabelKind::Backoff);
    }
    let mut sets = Vec::new();
    for kind in kinds {
        for side in [Side::Input, Side::Output] {
            for order in 1..=orders {
                sets.push(LabelSetId { side, kind, order });
            }
        }
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_in_the_documented_order_and_parse_back() {
        let names: Vec<String> = label_sets(2, Backoff::Katz).iter().map(|s| s.name()).collect();
        assert_eq!(names, ["in_1", "in_2", "out_1", "out_2", "in_backoff_1", "in_backoff_2", "out_backoff_1", "out_backoff_2"]);
        for set in label_sets(4, Backoff::Katz) {
            assert_eq!(LabelSetId::parse(&set.name()), Some(set));
        }
        assert_eq!(label_sets(3, Backoff::None).len(), 6);
        for bad in ["in", "in_", "in_0", "in_01", "up_1", "in_backoff_", "in_x", "out_backoff_-1"] {
            assert_eq!(LabelSetId::parse(bad), None, "{bad}");
        }
    }
}
