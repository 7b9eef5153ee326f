//! `infoplane estimate` and `infoplane merge-partials`.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use infoplane_estimator::{
    rng, Accumulator, Calibration, Estimate, LabelBatch, LabelIndex, LabelSetSpec, ReferenceOrigin, ReferencePoints, Rows,
    Settings, SoftAssigner, Weighting,
};
use infoplane_store::{file_sha256, read_npy, read_partial, write_atomic, write_npy_f32, write_partial, NpyArray, NpyData};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct EstimateArgs {
    /// Hidden states, [N, d] float32 or float16.
    #[arg(long, value_name = "Z.npy")]
    embeddings: PathBuf,
    /// A label set: integer [N], or [N, k] (k sets NAME[j], or one tuple set with --tuple-labels).
    #[arg(long = "labels", value_name = "NAME=L.npy")]
    labels: Vec<String>,
    /// Each row of an [N, k] label file is one label (an n-gram).
    #[arg(long)]
    tuple_labels: bool,
    /// Reference points W, [n, d]; rows are normalised if they are not unit vectors.
    #[arg(long, value_name = "W.npy", conflicts_with_all = ["seed", "n_bins"])]
    reference_points: Option<PathBuf>,
    /// Seed of the portable RNG (Philox4x64-10) that draws W.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of reference points n.
    #[arg(long, default_value_t = 100)]
    n_bins: usize,
    /// find-eps | exact | leading-order | fixed:EPS
    #[arg(long, default_value = "find-eps")]
    calibration: String,
    #[arg(long, value_enum, default_value_t = WeightingArg::Frequency)]
    weighting: WeightingArg,
    /// Drop labels seen fewer times (default: 1 for frequency, 5 for uniform weighting).
    #[arg(long)]
    min_count: Option<u64>,
    /// Seed of the permutation behind the shuffled-label null.
    #[arg(long, default_value_t = 0)]
    null_seed: u64,
    /// Skip the shuffled-label nulls (soft_h computes none; every I is then reported uncorrected).
    #[arg(long, conflicts_with = "null_seed")]
    no_null: bool,
    /// Also report H(Z | X = x) and N_x for every kept label.
    #[arg(long)]
    per_label: bool,
    /// Write the W that was used, [n, d] float32.
    #[arg(long, value_name = "W.npy")]
    save_reference_points: Option<PathBuf>,
    /// Also write the mergeable partial statistics (safetensors). Partials of different inputs
    /// (shards of one corpus) merge by label key; each shard's null permutes within the shard.
    #[arg(long, value_name = "FILE")]
    partial_output: Option<PathBuf>,
    /// Rows per accumulator update (bounds working memory; results do not depend on it beyond
    /// floating-point summation order).
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1..))]
    batch_rows: u64,
    #[arg(long, value_name = "OUT.json")]
    output: PathBuf,
}

#[derive(Args)]
pub struct MergeArgs {
    /// Partial-statistics files to merge (any order gives the same result).
    #[arg(required = true, value_name = "PARTIAL")]
    partials: Vec<PathBuf>,
    #[arg(long, value_name = "OUT.json")]
    output: PathBuf,
    /// Also write the merged partial statistics.
    #[arg(long, value_name = "FILE")]
    partial_output: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum WeightingArg {
    Frequency,
    Uniform,
}

struct LabelInput {
    name: String,
    path: PathBuf,
    arity: usize,
    index: LabelIndex,
    ids: Vec<u32>,
}

enum Embeddings {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
}

pub fn run(args: EstimateArgs) -> Result<()> {
    check_writable(&args.output)?;
    for p in args.save_reference_points.iter().chain(&args.partial_output) {
        check_writable(p)?;
    }
    let calibration = Calibration::parse(&args.calibration)?;
    let weighting = match args.weighting {
        WeightingArg::Frequency => Weighting::Frequency,
        WeightingArg::Uniform => Weighting::Uniform,
    };
    let min_count = args.min_count.unwrap_or_else(|| weighting.default_min_count());
    if min_count == 0 {
        bail!("--min-count must be at least 1");
    }

    let z_path = &args.embeddings;
    // The inputs' sha256 for the provenance, on a thread of its own while they are read and
    // interned (hashing 0.6 GB takes longer than reading it); joined before the timed span, so
    // it never competes with the estimate. A file it cannot read is reported by the loading.
    let inputs: Vec<PathBuf> = std::iter::once(z_path.clone())
        .chain(args.labels.iter().filter_map(|spec| label_spec(spec).ok().map(|(_, path)| path)))
        .chain(args.reference_points.clone())
        .collect();
    let hashing = std::thread::spawn(move || inputs.into_iter().filter_map(|path| file_sha256(&path).ok().map(|hash| (path, hash))).collect::<HashMap<PathBuf, String>>());
    let z = read_npy(z_path)?;
    let (rows, dim) = match z.shape.as_slice() {
        &[n, d] if n > 0 && d >= 2 => (n, d),
        s => bail!("{}: embeddings must be [N, d] with N ≥ 1 and d ≥ 2, got shape {s:?}", z_path.display()),
    };
    let z_dtype = z.data.dtype();
    let embeddings = match z.data {
        NpyData::F32(v) => Embeddings::F32(v),
        NpyData::F16(v) => Embeddings::F16(v),
        other => bail!("{}: embeddings must be float32 or float16, got {}", z_path.display(), other.dtype()),
    };

    let mut labels = args.labels.iter().map(|spec| load_labels(spec, rows, args.tuple_labels)).collect::<Result<Vec<_>>>()?.into_iter().flatten().collect::<Vec<_>>();
    let mut names = std::collections::HashSet::new();
    for l in &labels {
        if !names.insert(l.name.clone()) {
            bail!("label set name {:?} is used twice", l.name);
        }
    }

    let hashes = hashing.join().map_err(|_| anyhow!("the thread hashing the inputs panicked"))?;
    let sha256 = |path: &Path| hashes.get(path).cloned().map_or_else(|| file_sha256(path), Ok);
    // Timed like the reference harness's "seconds": everything from drawing W to the estimate,
    // after the inputs are read and hashed and the labels interned, before anything is written.
    let started = std::time::Instant::now();
    let w = match &args.reference_points {
        Some(path) => crate::analyze::load_reference_points(path, dim, "the embeddings")?,
        None => ReferencePoints::from_seed(args.seed, args.n_bins, dim)?,
    };
    let epsilon = calibration.epsilon(w.n(), dim)?;
    let assigner = SoftAssigner::new(&w, epsilon)?;

    let mut acc = Accumulator::new(Settings::new(&assigner, &calibration));
    let permutation = if args.no_null { Vec::new() } else { rng::permutation(rows, args.null_seed) };
    let mut null_ids = Vec::with_capacity(labels.len());
    // This file's label counts are complete for this file only: a partial meant to merge with
    // other shards keeps a vector for every label (merged by key) instead of singleton scalars.
    let counts_complete = args.partial_output.is_none();
    for l in &mut labels {
        let spec = LabelSetSpec { name: l.name.clone(), weighting, min_count, null: !args.no_null, per_label: args.per_label };
        acc.add_label_set(spec, std::mem::take(&mut l.index), counts_complete)?;
        null_ids.push(permutation.iter().map(|&j| l.ids[j as usize]).collect::<Vec<u32>>());
    }

    let progress = indicatif::ProgressBar::new(rows as u64).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} positions, {per_sec}, ETA {eta}").expect("valid template"),
    );
    progress.set_message("estimate");
    let step = args.batch_rows as usize;
    for start in (0..rows).step_by(step) {
        let end = (start + step).min(rows);
        let batches: Vec<LabelBatch<'_>> = labels
            .iter()
            .zip(&null_ids)
            .map(|(l, n)| LabelBatch { ids: &l.ids[start..end], null_ids: (!args.no_null).then(|| &n[start..end]) })
            .collect();
        let slice = match &embeddings {
            Embeddings::F32(v) => Rows::F32(&v[start * dim..end * dim]),
            Embeddings::F16(v) => Rows::F16(&v[start * dim..end * dim]),
        };
        acc.update(&assigner, slice, &batches).with_context(|| format!("{}", z_path.display()))?;
        progress.set_position(end as u64);
    }
    progress.finish_and_clear();
    let estimate = acc.estimate()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "estimated {rows} positions × {} label sets ({}) in {seconds:.3} s: {:.0} positions/s",
        labels.len(),
        if args.no_null { "no nulls" } else { "with nulls" },
        rows as f64 / seconds
    );

    let mut out = result_json(&estimate);
    let provenance = out.as_object_mut().expect("object");
    provenance.insert("null_seed".into(), if args.no_null { Value::Null } else { json!(args.null_seed) });
    provenance.insert("embeddings".into(), json!({"path": z_path, "sha256": sha256(z_path)?, "dtype": z_dtype, "shape": [rows, dim]}));
    provenance.insert(
        "reference_points".into(),
        match (w.origin(), &args.reference_points) {
            (ReferenceOrigin::Seed(s), _) => json!({"origin": "seed", "rng": "philox4x64-10+box-muller", "seed": s}),
            (_, Some(p)) => json!({"origin": "file", "path": p, "file_sha256": sha256(p)?}),
            _ => unreachable!("a provided W always has a path"),
        },
    );
    let label_map = provenance.get_mut("labels").and_then(Value::as_object_mut).expect("labels object");
    for l in &labels {
        let entry = label_map.get_mut(&l.name).and_then(Value::as_object_mut).expect("every set is reported");
        entry.insert("file".into(), json!({"path": l.path, "sha256": sha256(&l.path)?}));
        entry.insert("arity".into(), json!(l.arity));
    }

    if let Some(path) = &args.save_reference_points {
        write_npy_f32(path, &[w.n(), dim], w.rows())?;
    }
    if let Some(path) = &args.partial_output {
        write_partial(path, &acc.to_partial()?)?;
    }
    write_json(&args.output, &out)
}

pub fn merge(args: MergeArgs) -> Result<()> {
    check_writable(&args.output)?;
    let mut merged: Option<Accumulator> = None;
    let mut sources = Vec::new();
    for path in &args.partials {
        let acc = Accumulator::from_partial(read_partial(path)?).with_context(|| path.display().to_string())?;
        sources.push(json!({"path": path, "sha256": file_sha256(path)?, "positions": acc.positions()}));
        match merged.as_mut() {
            None => merged = Some(acc),
            Some(m) => m.merge(&acc).with_context(|| format!("{} cannot be merged with {}", path.display(), args.partials[0].display()))?,
        }
    }
    let merged = merged.ok_or_else(|| anyhow!("no partials given"))?;
    let mut out = result_json(&merged.estimate()?);
    out.as_object_mut().expect("object").insert("merged_from".into(), Value::Array(sources));
    if let Some(path) = &args.partial_output {
        write_partial(path, &merged.to_partial()?)?;
    }
    write_json(&args.output, &out)
}

/// The name and file of a `--labels NAME=PATH` argument.
fn label_spec(spec: &str) -> Result<(&str, PathBuf)> {
    let (name, path) = spec.split_once('=').ok_or_else(|| anyhow!("--labels {spec:?}: expected NAME=PATH"))?;
    if name.is_empty() {
        bail!("--labels {spec:?}: the label-set name is empty");
    }
    Ok((name, PathBuf::from(path)))
}

fn load_labels(spec: &str, rows: usize, tuple: bool) -> Result<Vec<LabelInput>> {
    let (name, path) = label_spec(spec)?;
    let NpyArray { shape, data } = read_npy(&path)?;
    let values = match data.to_i64() {
        Some(v) => v.map_err(|e| anyhow!("{}: {e}", path.display()))?,
        None => bail!("{}: labels must be an integer array, got {}", path.display(), data.dtype()),
    };
    let (n, k) = match shape.as_slice() {
        &[n] => (n, 1),
        &[n, k] if k >= 1 => (n, k),
        s => bail!("{}: labels must be [N] or [N, k], got shape {s:?}", path.display()),
    };
    if n != rows {
        bail!("{}: {n} labels for {rows} embedding rows", path.display());
    }
    // One set of arity `width` over the columns `first..first + width` of each row.
    let build = |name: String, first: usize, width: usize| {
        let mut index = LabelIndex::new();
        let ids = (0..rows).map(|i| index.intern(&values[i * k + first..i * k + first + width])).collect();
        LabelInput { name, path: path.clone(), arity: width, index, ids }
    };
    Ok(if k == 1 || tuple {
        vec![build(name.to_string(), 0, k)]
    } else {
        (0..k).map(|j| build(format!("{name}[{j}]"), j, 1)).collect()
    })
}

/// The estimate as JSON, label sets keyed by name.
fn result_json(e: &Estimate) -> Value {
    let mut labels = Map::new();
    for set in &e.label_sets {
        labels.insert(set.name.clone(), serde_json::to_value(set).expect("serialisable"));
    }
    json!({
        "tool": {"name": "infoplane", "version": env!("CARGO_PKG_VERSION")},
        "entropy": e.entropy,
        "epsilon": e.epsilon,
        "calibration": e.calibration,
        "n_bins": e.n_bins,
        "dim": e.dim,
        "positions": e.positions,
        "reference_points_sha256": e.reference_points_sha256,
        "units": "efficiency (nats / ln n_bins)",
        "labels": labels,
    })
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Fails before any work when an output could not be written at the end.
fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!("{}: the output directory {} does not exist", path.display(), dir.display());
    }
    if path.is_dir() {
        bail!("{}: is a directory", path.display());
    }
    // Writes go to a temporary file beside the output: fail now if the directory refuses them.
    let probe = dir.join(format!(".infoplane-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| format!("{}: the output directory {} is not writable", path.display(), dir.display()))?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}
