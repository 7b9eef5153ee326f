//! Matching result rows to score rows by model id: exact first, then case-insensitive; failing
//! both, the id without a sweep's "@revision" suffix, then the last two parts of a local path
//! ("…/org/name"), each case-insensitively and only when exactly one score row fits.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    CaseInsensitive,
    /// "org/name@rev" matched "org/name".
    WithoutRevision,
    /// "/models/org/name" matched "org/name".
    PathSuffix,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::CaseInsensitive => "case-insensitive",
            MatchKind::WithoutRevision => "without-revision",
            MatchKind::PathSuffix => "path-suffix",
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
        let tiers = [(Some(key.as_str()), MatchKind::CaseInsensitive), (without_revision(key), MatchKind::WithoutRevision), (path_suffix(key), MatchKind::PathSuffix)];
        let mut matched = false;
        for (candidate, kind) in tiers {
            let Some(candidate) = candidate else { continue };
            match folded.get(&candidate.to_lowercase()).map(Vec::as_slice) {
                Some(&[s]) => {
                    join.pairs.push(Pair { result: r, score: s, kind });
                    matched = true;
                }
                Some(many) => {
                    let names: Vec<&str> = many.iter().map(|&s| score_keys[s].as_str()).collect();
                    join.notes.push(format!("{key:?} matches several scores ignoring case ({}); left unmatched", names.join(", ")));
                    matched = false;
                }
                None => continue,
            }
            break;
        }
        if !matched {
            join.unmatched_results.push(key.clone());
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

/// "org/name" of "org/name@rev" (a sweep's model column names Hugging Face revisions this way).
fn without_revision(key: &str) -> Option<&str> {
    let (id, rev) = key.rsplit_once('@')?;
    (!id.is_empty() && !rev.is_empty() && !rev.contains('/')).then_some(id)
}

/// "org/name" of a local path "…/org/name" (at least three parts, or an absolute path).
fn path_suffix(key: &str) -> Option<&str> {
    let trimmed = key.trim_end_matches(['/', '\\']);
    let parts: Vec<&str> = trimmed.split(['/', '\\']).collect();
    if parts.len() < 3 || parts[parts.len() - 1].is_empty() || parts[parts.len() - 2].is_empty() {
        return None;
    }
    let n = parts[parts.len() - 1].len() + parts[parts.len() - 2].len() + 1;
    Some(&trimmed[trimmed.len() - n..])
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
    fn revisions_and_local_paths() {
        let j = join_keys(&s(&["EleutherAI/pythia-160m@step1000", "/data/models/Qwen/Qwen2.5-0.5B/", "gpt2@main", "a/b/c@x/y", "models/gpt2"]), &s(&["eleutherai/pythia-160m", "Qwen/Qwen2.5-0.5B", "gpt2"]));
        let got: Vec<(usize, usize, MatchKind)> = j.pairs.iter().map(|p| (p.result, p.score, p.kind)).collect();
        assert_eq!(got, vec![(0, 0, MatchKind::WithoutRevision), (1, 1, MatchKind::PathSuffix), (2, 2, MatchKind::WithoutRevision)]);
        assert_eq!(j.unmatched_results, s(&["a/b/c@x/y", "models/gpt2"]), "a relative 2-part id is not a path");
        assert_eq!(path_suffix("x/org/name"), Some("org/name"));
        assert_eq!(path_suffix("org/name"), None);
    }

    #[test]
    fn repeated_matches_are_noted() {
        let j = join_keys(&s(&["m", "m", "M"]), &s(&["m"]));
        assert_eq!(j.pairs.len(), 3);
        assert!(j.notes.iter().any(|n| n.contains("matches 3 results rows")), "{:?}", j.notes);
    }
}
