//! Runs every benchmark and the allocation count, then writes `docs/benchmarks.md`.
//!
//! ```sh
//! cargo run -p benches --bin report                 # full run (about 10 minutes on 2 cores)
//! cargo run -p benches --bin report -- --callgrind  # plus instructions per call (valgrind)
//! cargo run -p benches --bin report -- --quick      # short criterion settings, for a try-out
//! cargo run -p benches --bin report -- --from DIR   # re-render a finished run's data
//! ```
//!
//! Each run writes its raw data to a fresh directory, `<target>/bench-report/<unix time>/`:
//! criterion's output (`criterion/`, via `CRITERION_HOME`), `allocs.json`, `callgrind.json`
//! and `meta.json` (machine, toolchain, commit, load). The page is rendered from that directory
//! only, so every figure in it comes from one run. The benches themselves run through
//! `cargo bench -p benches` (the bench profile), exactly as a person would run them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use benches::scenarios::{self, GROUPS, Kind, Row};

mod targets;
use serde_json::Value;
use targets::{Verdict, targets};

/// Calls per callgrind run: the instruction count per call is the difference between the two
/// runs divided by the difference in calls.
const CALLGRIND_CALLS: (u64, u64) = (2_000, 12_000);

struct Options {
    quick: bool,
    callgrind: bool,
    from: Option<PathBuf>,
    out: PathBuf,
    criterion_args: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: report [--quick] [--callgrind] [--from DIR] [--out FILE] [-- CRITERION ARGS]"
    );
    std::process::exit(2);
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the benches crate sits in the workspace root")
        .to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

fn parse_options(root: &Path) -> Options {
    let mut options = Options {
        quick: false,
        callgrind: false,
        from: None,
        out: root.join("docs").join("benchmarks.md"),
        criterion_args: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--callgrind" => options.callgrind = true,
            "--from" => options.from = Some(args.next().unwrap_or_else(|| usage()).into()),
            "--out" => options.out = args.next().unwrap_or_else(|| usage()).into(),
            "--" => options.criterion_args.extend(args.by_ref()),
            _ => usage(),
        }
    }
    options
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    assert!(status.success(), "{command:?} failed: {status}");
}

fn output(command: &mut Command) -> String {
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    assert!(out.status.success(), "{command:?} failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(
        path,
        serde_json::to_string_pretty(value).expect("valid JSON"),
    )
    .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

fn cpu_model() -> (String, usize) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, model)| model.trim().to_owned());
    let cores = info
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    (model, cores)
}

fn machine_meta(root: &Path) -> Value {
    let (model, cores) = cpu_model();
    let commit = output(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(root),
    );
    let dirty = !output(
        Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .current_dir(root),
    )
    .is_empty();
    let rustc = output(Command::new("rustc").arg("-V"));
    serde_json::json!({
        "cpu": model,
        "cores": cores,
        "rustc": rustc,
        "commit": commit,
        "dirty": dirty,
    })
}

/// Builds the `probe` binary and returns its path.
fn build_probe(root: &Path) -> PathBuf {
    let messages = output(
        cargo()
            .args([
                "build",
                "-p",
                "benches",
                "--profile",
                "bench",
                "--bin",
                "probe",
                "--message-format=json",
            ])
            .current_dir(root),
    );
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["target"]["name"] == "probe")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the probe executable")
}

fn callgrind_instructions(probe: &Path, row: Row, calls: u64) -> u64 {
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(probe)
        .args([row.group, row.contender, row.param, &calls.to_string()])
        .output()
        .unwrap_or_else(|err| panic!("cannot run valgrind: {err}"));
    assert!(out.status.success(), "callgrind failed on {row:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|line| line.split_once("Collected :"))
        .and_then(|(_, count)| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no instruction count from callgrind for {row:?}"))
}

fn run_callgrind(root: &Path) -> Value {
    let probe = build_probe(root);
    let (few, many) = CALLGRIND_CALLS;
    let mut rows = Vec::new();
    for (row, kind) in scenarios::rows() {
        if kind != Kind::Steady {
            continue;
        }
        eprintln!("callgrind: {} {} {}", row.group, row.contender, row.param);
        let low = callgrind_instructions(&probe, row, few);
        let high = callgrind_instructions(&probe, row, many);
        #[allow(clippy::cast_precision_loss)] // instruction counts far below 2^52
        let per_call = high.saturating_sub(low) as f64 / (many - few) as f64;
        rows.push(serde_json::json!({
            "group": row.group,
            "contender": row.contender,
            "param": row.param,
            "instructions_per_call": per_call,
        }));
    }
    serde_json::json!({ "rows": rows })
}

/// Runs everything into a fresh directory and returns it.
fn measure(root: &Path, options: &Options) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let dir = target_dir(root).join("bench-report").join(secs.to_string());
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
    eprintln!("report: writing this run's data to {}", dir.display());

    let mut meta = machine_meta(root);
    meta["load_before"] = load_average().into();
    meta["quick"] = options.quick.into();

    let mut bench = cargo();
    bench
        .args(["bench", "-p", "benches", "--benches", "--"])
        .env("CRITERION_HOME", dir.join("criterion"))
        .current_dir(root);
    if options.quick {
        bench.args(["--warm-up-time", "0.3", "--measurement-time", "1"]);
    }
    bench.args(&options.criterion_args);
    run(&mut bench);
    meta["load_after_benches"] = load_average().into();

    let allocs = dir.join("allocs.json");
    run(cargo()
        .args([
            "run",
            "-p",
            "benches",
            "--profile",
            "bench",
            "--bin",
            "allocs",
            "--",
            "--json",
        ])
        .arg(&allocs)
        .stdout(Stdio::null())
        .current_dir(root));

    if options.callgrind {
        write_json(&dir.join("callgrind.json"), &run_callgrind(root));
    }
    meta["load_after"] = load_average().into();
    write_json(&dir.join("meta.json"), &meta);
    dir
}

// ===== reading a run =====

type Key = (String, String, String);

fn key(group: &str, contender: &str, param: &str) -> Key {
    (group.to_owned(), contender.to_owned(), param.to_owned())
}

/// Criterion's estimates for one row, in nanoseconds.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    median: f64,
    low: f64,
    high: f64,
}

struct Run {
    meta: Value,
    times: HashMap<Key, Estimate>,
    allocs: HashMap<Key, f64>,
    instructions: HashMap<Key, f64>,
}

fn collect_estimates(dir: &Path, times: &mut HashMap<Key, Estimate>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "new") {
            let bench = path.join("benchmark.json");
            let estimates = path.join("estimates.json");
            if bench.exists() && estimates.exists() {
                let bench = read_json(&bench);
                let estimates = read_json(&estimates);
                let text = |field: &str| bench[field].as_str().unwrap_or_default().to_owned();
                let median = &estimates["median"];
                times.insert(
                    (text("group_id"), text("function_id"), text("value_str")),
                    Estimate {
                        median: median["point_estimate"].as_f64().unwrap_or(f64::NAN),
                        low: median["confidence_interval"]["lower_bound"]
                            .as_f64()
                            .unwrap_or(f64::NAN),
                        high: median["confidence_interval"]["upper_bound"]
                            .as_f64()
                            .unwrap_or(f64::NAN),
                    },
                );
            }
        } else {
            collect_estimates(&path, times);
        }
    }
}

fn rows_of(value: &Value, per: impl Fn(&Value) -> f64) -> HashMap<Key, f64> {
    value["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let text = |name: &str| row[name].as_str().unwrap_or_default();
            (
                key(text("group"), text("contender"), text("param")),
                per(row),
            )
        })
        .collect()
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn load_run(dir: &Path) -> Run {
    let mut times = HashMap::new();
    collect_estimates(&dir.join("criterion"), &mut times);
    let allocs = rows_of(&read_json(&dir.join("allocs.json")), |row| {
        row["allocations"].as_u64().unwrap_or(0) as f64
            / row["calls"].as_u64().unwrap_or(1).max(1) as f64
    });
    let callgrind = dir.join("callgrind.json");
    let instructions = if callgrind.exists() {
        rows_of(&read_json(&callgrind), |row| {
            row["instructions_per_call"].as_f64().unwrap_or(f64::NAN)
        })
    } else {
        HashMap::new()
    };
    Run {
        meta: read_json(&dir.join("meta.json")),
        times,
        allocs,
        instructions,
    }
}

// ===== rendering =====

impl Run {
    fn ns(&self, group: &str, contender: &str, param: &str) -> Option<f64> {
        self.times
            .get(&key(group, contender, param))
            .map(|estimate| estimate.median)
    }

    fn ratio(&self, group: &str, param: &str, a: &str, b: &str) -> Option<f64> {
        Some(self.ns(group, a, param)? / self.ns(group, b, param)?)
    }

    fn allocations(&self, group: &str, contender: &str, param: &str) -> Option<f64> {
        self.allocs.get(&key(group, contender, param)).copied()
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1_000.0)
    } else if ns >= 100.0 {
        format!("{ns:.0}")
    } else {
        format!("{ns:.1}")
    }
}

fn fmt_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(
        || "—".into(),
        |r| {
            if r >= 100.0 {
                format!("{r:.0}×")
            } else if r >= 10.0 {
                format!("{r:.1}×")
            } else if r >= 0.1 {
                format!("{r:.2}×")
            } else if r >= 0.001 {
                format!("{r:.3}×")
            } else {
                format!("{r:.1e}×")
            }
        },
    )
}

fn fmt_opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{v:.digits$}"))
}

fn table(run: &Run, out: &mut String) {
    let callgrind = !run.instructions.is_empty();
    let _ = write!(
        out,
        "| group | contender | param | ns/call (median) | 95% CI | × baseline | × tower-resilience | allocs/call |"
    );
    if callgrind {
        out.push_str(" instr/call |");
    }
    out.push_str("\n|---|---|---|--:|--:|--:|--:|--:|");
    if callgrind {
        out.push_str("--:|");
    }
    out.push('\n');
    for (row, _) in scenarios::rows() {
        let k = key(row.group, row.contender, row.param);
        let estimate = run.times.get(&k);
        let _ = write!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            row.group,
            if row.contender.starts_with("seawall") {
                format!("**{}**", row.contender)
            } else {
                row.contender.to_owned()
            },
            row.param,
            estimate.map_or_else(|| "—".into(), |e| fmt_ns(e.median)),
            estimate.map_or_else(
                || "—".into(),
                |e| format!("{}–{}", fmt_ns(e.low), fmt_ns(e.high))
            ),
            if row.contender == "baseline" {
                "1.00×".into()
            } else {
                fmt_ratio(run.ratio(row.group, row.param, row.contender, "baseline"))
            },
            if row.contender == "baseline" {
                "—".into()
            } else {
                fmt_ratio(run.ratio(row.group, row.param, row.contender, "tower-resilience"))
            },
            fmt_opt(run.allocations(row.group, row.contender, row.param), 2),
        );
        if callgrind {
            let _ = write!(out, " {} |", fmt_opt(run.instructions.get(&k).copied(), 0));
        }
        out.push('\n');
    }
}

fn meta_text(meta: &Value, field: &str) -> String {
    match &meta[field] {
        Value::String(text) => text.clone(),
        Value::Null => "unknown".into(),
        other => other.to_string(),
    }
}

fn render(run: &Run, dir: &Path) -> String {
    let meta = &run.meta;
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    out.push_str(
        "Generated by `cargo run -p benches --bin report`: do not edit by hand. Every figure \
         below comes from one run of that command (its raw data: criterion's estimates, the \
         allocation counts and the run's metadata, all in one directory).\n\n",
    );
    out.push_str("## Conditions\n\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| machine | {} ({} logical cores) |",
        meta_text(meta, "cpu"),
        meta_text(meta, "cores")
    );
    let _ = writeln!(out, "| toolchain | `{}` |", meta_text(meta, "rustc"));
    let _ = writeln!(
        out,
        "| commit | `{}`{} |",
        meta_text(meta, "commit"),
        if meta["dirty"] == Value::Bool(true) {
            " (with uncommitted changes)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "| load average (1, 5, 15 min) | before {}; after the benches {}; at the end {} |",
        meta_text(meta, "load_before"),
        meta_text(meta, "load_after_benches"),
        meta_text(meta, "load_after"),
    );
    let _ = writeln!(
        out,
        "| criterion settings | {} |",
        if meta["quick"] == Value::Bool(true) {
            "`--quick` run: 0.3 s warm-up, 1 s measurement — indicative only"
        } else {
            "1 s warm-up, 3 s measurement, 50 samples per row"
        }
    );
    let _ = writeln!(
        out,
        "| raw data | `{}` (not committed) |\n",
        dir.file_name().map_or_else(
            || dir.display().to_string(),
            |name| format!("<target>/bench-report/{}", name.to_string_lossy())
        )
    );

    out.push_str("## Method\n\n");
    out.push_str(
        "- **One call** = build the contender's call future around a ready inner operation \
         (`std::future::Ready`), poll it **once** with a no-op waker, return its output. \
         tower services also get one `poll_ready` first. The decorator \
         or service is built once and reused; nothing is constructed inside the measurement.\n\
         - Single-thread rows run inside an entered current-thread tokio runtime (time driver \
         on), built outside the measured closure. **ns/call** is criterion's median of the \
         per-iteration sample means, with its 95% confidence interval.\n\
         - `circuit_breaker/time_window` rows refill the window (outside the measurement) every \
         tenth of its fill, so the window always holds between 1.0× and 1.1× the stated calls.\n\
         - `circuit_breaker/threads` rows: 1, 2 or 4 OS threads, each on a clone of one breaker, \
         inside a 4-worker multi-thread runtime (`Handle::block_on`, so a contended call waits \
         with a real waker); `iter_custom`, time = wall time / total calls, so throughput is \
         its inverse.\n\
         - **× baseline** and **× tower-resilience** divide the row's median by that of the \
         `baseline` (bare inner call, same harness) or `tower-resilience` row of the same group \
         and parameter, in this run.\n\
         - **allocs/call**: a separate binary (`allocs`, the only target linking the counting \
         allocator) runs each row 16 times to warm up, then counts allocations over 10,000 \
         calls (one refill chunk for time-window rows; per thread for the threaded rows).\n",
    );
    if !run.instructions.is_empty() {
        out.push_str(
            "- **instr/call** (callgrind): the `probe` binary runs a row 2,000 and 12,000 times \
             under `valgrind --tool=callgrind`; the difference in instructions divided by \
             10,000. Immune to load from other processes, blind to the cost of atomics and \
             cache misses.\n",
        );
    }
    out.push_str(
        "\nThe machine is shared (2 cores, other builds running at times): compare ratios within \
         a group, which were measured minutes apart, rather than absolute figures across runs.\n\n",
    );

    out.push_str("## Results\n\n");
    table(run, &mut out);

    out.push_str(
        "\n## Targets (issues 8, 11 and 12)\n\n| target | verdict | figures |\n|---|---|---|\n",
    );
    for (target, verdict) in targets(run) {
        let (word, detail) = match verdict {
            Verdict::Met(detail) => ("met", detail),
            Verdict::Missed(detail) => ("**missed**", detail),
            Verdict::Pending(detail) => ("pending", detail),
        };
        let _ = writeln!(out, "| {target} | {word} | {detail} |");
    }

    out.push_str("\n## Scenarios\n\n| group | what one call does |\n|---|---|\n");
    for group in GROUPS {
        let _ = writeln!(out, "| `{}` | {} |", group.name, group.about);
    }
    out.push_str(
        "\nContenders: `baseline` = the bare inner call; `baseline-tower` = the same call through \
         tower's protocol with no layer (`poll_ready`, then `call`); `seawall` = the native API \
         (`.call(|| op)`); `seawall-tower` = seawall's tower layers; `tower` = tower 0.5's \
         built-ins (`Timeout`, `ConcurrencyLimit`, `Retry` with a policy that never retries a \
         success); `tower-resilience` = tower-resilience 0.13 configured as seawall \
         (`tower-resilience-wait`: its default bulkhead, which waits instead of rejecting); \
         `failsafe` = failsafe 1.3 (consecutive-failures policy for the count-window rows, its \
         EWMA success-rate policy for the time window); `recloser-async` / `recloser-sync` = \
         recloser 1.4; `seawall-coarse-clock` = seawall's breaker on `Clock::coarse()` (a clock \
         read is one atomic load); `seawall-metrics` = a registry breaker bound to `metrics` \
         output (call totals kept). The configurations are in `benches/src/config.rs`, \
         `peers.rs` and `ours.rs`. Why a missed target is missed, and what would close it: \
         [`benchmarks-notes.md`](benchmarks-notes.md).\n",
    );
    out
}

fn main() {
    let root = workspace_root();
    let options = parse_options(&root);
    let dir = match &options.from {
        Some(dir) => dir.clone(),
        None => measure(&root, &options),
    };
    let run = load_run(&dir);
    let page = render(&run, &dir);
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", parent.display()));
    }
    std::fs::write(&options.out, page)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", options.out.display()));
    eprintln!("report: wrote {}", options.out.display());
}
