//! Matching result rows to score rows by model id: exact first, then case-insensitive.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    CaseInsensitive,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::CaseInsensitive => "case-insensitive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub result: usize,
    pub score: usize,
    pub kind: MatchKind,
}

#[derive(Debug, Clone, Default)]
pub struct Join {
    /// In results order.
    pub pairs: Vec<Pair>,
    pub unmatched_results: Vec<String>,
    pub unmatched_scores: Vec<String>,
    /// Ambiguities and repeated matches worth telling the user.
    pub notes: Vec<String>,
}

/// Pairs each result key with a score key (score keys are unique). A result key without an exact
/// match takes the one score key equal to it ignoring case; when several are, it stays unmatched
/// and a note says why. Several results may match one score row (e.g. checkpoints of one model):
/// a note lists them, since each then carries the same score.
pub fn join_keys(result_keys: &[String], score_keys: &[String]) -> Join {
    let exact: HashMap<&str, usize> = score_keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let mut folded: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, k) in score_keys.iter().enumerate() {
        folded.entry(k.to_lowercase()).or_default().push(i);
    }
    let mut join = Join::default();
    for (r, key) in result_keys.iter().enumerate() {
        if let Some(&s) = exact.get(key.as_str()) {
            join.pairs.push(Pair { result: r, score: s, kind: MatchKind::Exact });
            continue;
        }
        match folded.get(&key.to_lowercase()).map(Vec::as_slice) {
            Some(&[s]) => join.pairs.push(Pair { result: r, score: s, kind: MatchKind::CaseInsensitive }),
            Some(many) => {
                let names: Vec<&str> = many.iter().map(|&s| score_keys[s].as_str()).collect();
                join.notes.push(format!("{key:?} matches several scores ignoring case ({}); left unmatched", names.join(", ")));
                join.unmatched_results.push(key.clone());
            }
            None => join.unmatched_results.push(key.clone()),
        }
    }
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); score_keys.len()];
    for p in &join.pairs {
        users[p.score].push(p.result);
    }
    for (s, rs) in users.iter().enumerate() {
        if rs.is_empty() {
            join.unmatched_scores.push(score_keys[s].clone());
        } else if rs.len() > 1 {
            let names: Vec<&str> = rs.iter().map(|&r| result_keys[r].as_str()).collect();
            join.notes.push(format!("score row {:?} matches {} results rows ({}); each carries the same score", score_keys[s], rs.len(), names.join(", ")));
        }
    }
    join
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn exact_first_then_case_insensitive() {
        let j = join_keys(&s(&["Org/A", "org/b", "ORG/C", "x", "Org/D"]), &s(&["org/a", "Org/A", "Org/B", "org/c", "y", "org/d", "ORG/D"]));
        let got: Vec<(usize, usize, MatchKind)> = j.pairs.iter().map(|p| (p.result, p.score, p.kind)).collect();
        assert_eq!(got, vec![(0, 1, MatchKind::Exact), (1, 2, MatchKind::CaseInsensitive), (2, 3, MatchKind::CaseInsensitive)]);
        assert_eq!(j.unmatched_results, s(&["x", "Org/D"]));
        assert_eq!(j.unmatched_scores, s(&["org/a", "y", "org/d", "ORG/D"]));
        assert!(j.notes[0].contains("\"Org/D\" matches several"), "{:?}", j.notes);
    }

    #[test]
    fn repeated_matches_are_noted() {
        let j = join_keys(&s(&["m", "m", "M"]), &s(&["m"]));
        assert_eq!(j.pairs.len(), 3);
        assert!(j.notes.iter().any(|n| n.contains("matches 3 results rows")), "{:?}", j.notes);
    }
}
