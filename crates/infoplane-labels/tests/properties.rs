//! Properties of the pre-pass against a brute-force reading of METHOD.md §3–4: keys, valid
//! positions, synchronised back-off, complete counts, determinism, mergeable n-gram counts.

use infoplane_labels::{valid_positions, Backoff, CorpusLabels, LabelConfig, LabelKind, NgramCounts, NullPermutation, Side};
use proptest::prelude::*;

/// Occurrences of `gram` anywhere in the analysed documents (those with a valid position), by
/// scanning: the reference for NgramCounts.
fn brute_count(docs: &[Vec<u32>], orders: usize, gram: &[u32]) -> u64 {
    docs.iter()
        .filter(|d| !valid_positions(d.len(), orders).is_empty())
        .map(|d| d.windows(gram.len()).filter(|w| *w == gram).count() as u64)
        .sum()
}

/// Small vocabularies so that n-grams repeat and back-off has something to choose.
fn corpus() -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(prop::collection::vec(0u32..4, 0..24), 1..8)
}

fn key(labels: &CorpusLabels, set: usize, g: usize) -> Vec<i64> {
    labels.index(set).key(labels.ids(set)[g]).to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn keys_and_backoff_match_a_brute_force_reading(docs in corpus(), orders in 1usize..5, tau in 1u64..6) {
        let config = LabelConfig { orders, backoff: Backoff::Katz, backoff_min_count: tau };
        let labels = CorpusLabels::build(&config, &docs).unwrap();
        let sets = labels.label_sets().to_vec();
        prop_assert_eq!(sets.len(), 4 * orders);
        let mut g = 0usize;
        let mut too_short = 0;
        for (d, doc) in docs.iter().enumerate() {
            let span = labels.document(d).clone();
            prop_assert_eq!(span.valid.clone(), valid_positions(doc.len(), orders));
            if doc.len() < 2 * orders {
                prop_assert!(span.valid.is_empty());
                too_short += 1;
            } else {
                prop_assert_eq!(span.valid.clone(), orders - 1..doc.len() - orders);
            }
            prop_assert_eq!(span.global.clone(), g..g + span.valid.len());
            for i in span.valid.clone() {
                let as_key = |t: &[u32]| t.iter().map(|&x| x as i64).collect::<Vec<i64>>();
                let qualifies = |t: &[u32]| t.len() == 1 || brute_count(&docs, orders, t) >= tau;
                let mut previous = 0;
                for (s, set) in sets.iter().enumerate() {
                    let got = key(&labels, s, g);
                    let k = match set.kind {
                        LabelKind::Fixed => set.order,
                        LabelKind::Backoff => {
                            let level = set.order;
                            let k_in = (1..=level).filter(|&k| qualifies(&doc[i + 1 - k..=i])).max().unwrap();
                            let k_out = (1..=level).filter(|&k| qualifies(&doc[i + 1..=i + k])).max().unwrap();
                            k_in.min(k_out)
                        }
                    };
                    let expect = match set.side {
                        Side::Input => as_key(&doc[i + 1 - k..=i]),
                        Side::Output => as_key(&doc[i + 1..=i + k]),
                    };
                    prop_assert_eq!(&got, &expect, "set {} doc {} i {}", set.name(), d, i);
                    if set.kind == LabelKind::Backoff {
                        // Nested: order ≤ level, non-decreasing in the level (per side); level 1 = order 1.
                        prop_assert!(got.len() <= set.order);
                        if set.order == 1 {
                            prop_assert_eq!(got.len(), 1);
                            previous = 0;
                        }
                        prop_assert!(got.len() >= previous);
                        previous = got.len();
                        // Synchronised: the other side at the same level has the same order.
                        let twin = labels.set_index(&format!("{}_backoff_{}", if set.side == Side::Input { "out" } else { "in" }, set.order)).unwrap();
                        prop_assert_eq!(key(&labels, twin, g).len(), got.len());
                    }
                }
                g += 1;
            }
        }
        prop_assert_eq!(labels.positions(), g);
        prop_assert_eq!(labels.too_short(), too_short);
        // Complete counts: each index counts exactly the positions carrying each id.
        for s in 0..sets.len() {
            let index = labels.index(s);
            prop_assert_eq!(index.counts().iter().sum::<u64>(), g as u64);
            let mut tally = vec![0u64; index.len()];
            for &id in labels.ids(s) {
                tally[id as usize] += 1;
            }
            prop_assert_eq!(&tally, &index.counts().to_vec());
            prop_assert!(index.counts().iter().all(|&c| c > 0));
            // First-seen order: ids appear for the first time in increasing order.
            let mut next = 0u32;
            for &id in labels.ids(s) {
                prop_assert!(id <= next);
                if id == next { next += 1; }
            }
            prop_assert_eq!(labels.order_histogram(s).iter().sum::<u64>(), g as u64);
        }
    }

    #[test]
    fn ngram_counts_equal_a_scan_and_merge_across_any_split(docs in corpus(), orders in 1usize..5, split in 0usize..8) {
        let all = NgramCounts::from_documents(orders, &docs).unwrap();
        let split = split.min(docs.len());
        let mut left = NgramCounts::from_documents(orders, &docs[..split]).unwrap();
        let mut right = NgramCounts::new(orders).unwrap();
        for d in &docs[split..] {
            right.add_document(d);
        }
        left.merge(&right).unwrap();
        for doc in &docs {
            for k in 1..=orders {
                for w in doc.windows(k) {
                    let expect = brute_count(&docs, orders, w);
                    prop_assert_eq!(all.count(w), expect);
                    prop_assert_eq!(left.count(w), expect);
                }
            }
        }
        for k in 1..=orders {
            prop_assert_eq!(left.distinct(k), all.distinct(k));
        }
        prop_assert_eq!(left.documents(), all.documents());
        // Labels built from merged counts are those built from one pass.
        let config = LabelConfig { orders, backoff: Backoff::Katz, backoff_min_count: 2 };
        let a = CorpusLabels::build(&config, &docs).unwrap();
        let b = CorpusLabels::build_with_counts(&config, &left, &docs).unwrap();
        for s in 0..a.label_sets().len() {
            prop_assert_eq!(a.ids(s), b.ids(s));
            prop_assert_eq!(a.index(s).fingerprint(), b.index(s).fingerprint());
        }
    }
}

#[test]
fn ids_are_identical_across_runs_and_thread_counts() {
    // A larger corpus so that rayon really splits the work.
    let docs: Vec<Vec<u32>> = (0..300u64)
        .map(|d| {
            let rng = infoplane_estimator::rng::Philox::new(d, 77);
            // Log-uniform token ids (Zipf-like): frequent short n-grams, rare long ones.
            (0..(20 + d % 90)).map(|i| (rng.uniform(i) * 200f64.ln()).exp() as u32).collect()
        })
        .collect();
    let config = LabelConfig::default();
    let a = CorpusLabels::build(&config, &docs).unwrap();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let b = one.install(|| CorpusLabels::build(&config, &docs).unwrap());
    let c = CorpusLabels::build(&config, &docs).unwrap();
    assert!(a.positions() > 10_000);
    for s in 0..a.label_sets().len() {
        assert_eq!(a.ids(s), b.ids(s), "{}", a.label_sets()[s]);
        assert_eq!(a.ids(s), c.ids(s));
        assert_eq!(a.index(s).fingerprint(), b.index(s).fingerprint());
    }
    // Back-off did back off: level 4 uses several orders, and fewer distinct labels than in_4.
    let level4 = a.set_index("in_backoff_4").unwrap();
    let hist = a.order_histogram(level4);
    assert!(hist.iter().filter(|&&c| c > 0).count() >= 3, "{hist:?}");
    assert!(a.index(level4).len() < a.index(a.set_index("in_4").unwrap()).len());
    // The corpus-wide null permutes each set's labels over all positions.
    let null = NullPermutation::new(a.positions(), 5).unwrap();
    let set = a.set_index("out_2").unwrap();
    let mut joined = Vec::new();
    for d in 0..a.documents() {
        joined.extend(null.null_ids(a.ids(set), a.document(d).global.clone()).unwrap());
    }
    let mut x = joined.clone();
    let mut y = a.ids(set).to_vec();
    x.sort_unstable();
    y.sort_unstable();
    assert_eq!(x, y);
    assert_ne!(joined, a.ids(set));
}

#[test]
fn valid_position_edges() {
    for k in 1..=5usize {
        for len in 0..2 * k {
            assert!(valid_positions(len, k).is_empty(), "len {len} K {k}");
        }
        assert_eq!(valid_positions(2 * k, k), k - 1..k, "exactly one position at len 2K");
        assert_eq!(valid_positions(512, k).len(), 512 - 2 * k + 1);
    }
    let docs = vec![vec![1u32; 7], vec![2u32; 8]];
    let labels = CorpusLabels::build(&LabelConfig::default(), &docs).unwrap();
    assert_eq!((labels.too_short(), labels.positions()), (1, 1));
    let empty: Vec<Vec<u32>> = Vec::new();
    let labels = CorpusLabels::build(&LabelConfig::default(), &empty).unwrap();
    assert_eq!((labels.positions(), labels.documents()), (0, 0));
}
