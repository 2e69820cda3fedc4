//! The lab end to end: determinism, what the report says, shipped scenarios, config errors.

use std::path::{Path, PathBuf};

use seawall_lab::scenario::{Origin, Scenario};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn shipped(name: &str, scale: f64) -> seawall_lab::scenario::Loaded {
    let mut loaded = seawall_lab::load_file(&scenarios_dir().join(name), None).unwrap();
    seawall_lab::scale_durations(&mut loaded, scale);
    loaded
}

fn parse(text: &str) -> Result<seawall_lab::scenario::Loaded, seawall::ConfigError> {
    Scenario::parse(text)?.load(Origin {
        dir: Path::new("."),
    })
}

#[test]
fn the_same_file_and_seed_give_byte_identical_output() {
    let loaded = shipped("3am-outage-breaker.toml", 0.02);
    let first = seawall_lab::run(&loaded).unwrap();
    let second = seawall_lab::run(&loaded).unwrap();
    assert_eq!(first.markdown, second.markdown);
    assert_eq!(first.svg, second.svg);
    assert_eq!(first.html, second.html);

    let mut reseeded = loaded;
    reseeded.scenario.seed += 1;
    let other = seawall_lab::run(&reseeded).unwrap();
    assert_ne!(
        first.markdown, other.markdown,
        "another seed draws other latencies"
    );
}

#[test]
fn a_hang_opens_the_breaker_and_the_report_gives_the_time_to_open() {
    // 24 s healthy, 12 s hanging, 36 s recovered.
    let loaded = shipped("3am-outage-breaker.toml", 0.02);
    let output = seawall_lab::run(&loaded).unwrap();
    let summary = &output.summary;
    let time_to_open = summary.time_to_open.expect("the breaker opened");
    // 10 calls in a 10-call window time out after 3 s: open a little after 3 s.
    assert!(
        (3_000_000_000..4_000_000_000).contains(&time_to_open),
        "opened after {time_to_open} ns"
    );
    assert!(
        summary.time_to_recover.is_some(),
        "closed again once the PG was back"
    );
    assert!(
        summary.uncertain > 0,
        "timeouts on a hung PG are uncertain calls"
    );
    assert!(
        output.markdown.contains("Time to open: 3."),
        "{}",
        output.markdown
    );
    assert!(
        output.svg.contains("fill=\"#d62728\" fill-opacity"),
        "an OPEN band is drawn"
    );
}

#[test]
fn without_a_breaker_the_hang_costs_every_call_its_timeouts() {
    let loaded = shipped("3am-outage-no-breaker.toml", 0.02);
    let summary = seawall_lab::run(&loaded).unwrap().summary;
    assert_eq!(summary.time_to_open, None);
    assert!(summary.transitions.is_empty());
    // Every call during the hang makes 3 attempts of 3 s: amplification above 1.
    assert!(
        summary.amplification > 1.2,
        "amplification {}",
        summary.amplification
    );
    assert!(
        summary.latency[2] >= 9_000_000_000,
        "max latency {}",
        summary.latency[2]
    );
}

const RETRIES: &str = r#"
seed = 1
[load]
rate = 100
arrivals = "uniform"
duration = "20s"
[dependency]
latency = { fixed = "10ms" }
errors = { internal = 0.5 }
[policy.document.retry.instances.pg]
max_attempts = 3
wait_duration = "10ms"
"#;

#[test]
fn amplification_counts_every_retry_that_reached_the_dependency() {
    let output = seawall_lab::run(&parse(RETRIES).unwrap()).unwrap();
    let s = &output.summary;
    assert_eq!(s.calls, 2_000);
    assert_eq!(s.requests, s.calls + s.retries);
    // Each attempt fails with probability 1/2: 1 + 1/2 + 1/4 requests per call.
    assert!(
        (s.amplification - 1.75).abs() < 0.06,
        "amplification {}",
        s.amplification
    );
    // A call fails only if all three attempts do: 1/8.
    let failed = 100.0 - s.success_rate();
    assert!((failed - 12.5).abs() < 2.5, "failed {failed} %");
    assert!(
        output
            .markdown
            .contains("| amplification (requests per call) | 1.7")
    );
}

#[test]
fn every_shipped_scenario_parses_and_runs() {
    let mut names: Vec<_> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    for path in names {
        let mut loaded = seawall_lab::load_file(&path, None).unwrap();
        // About a minute of each, whatever its length.
        let total = Scenario::total_duration(&loaded.phases).as_secs_f64();
        seawall_lab::scale_durations(&mut loaded, (60.0 / total).min(1.0));
        let output = seawall_lab::run(&loaded).unwrap();
        assert!(output.summary.calls > 0, "{}", path.display());
        assert!(output.svg.starts_with("<svg"), "{}", path.display());
    }
}

#[test]
fn config_errors_name_the_key() {
    let key = |text: &str| parse(text).unwrap_err().key().to_owned();
    let base = RETRIES.replace(
        "[policy.document.retry.instances.pg]\nmax_attempts = 3\nwait_duration = \"10ms\"\n",
        "",
    );
    assert_eq!(key(&base.replace("rate = 100", "rte = 100")), "load.rte");
    assert_eq!(
        key(&base.replace("0.5", "1.5")),
        "dependency.errors.internal"
    );
    assert_eq!(
        key(&(base.replace("duration = \"20s\"", "")
            + "[[phase]]\nduration = \"1s\"\n[[phase]]\nduration = \"1s\"\nerrors = { boom = -1.0 }\n")),
        "phase[1].errors.boom"
    );
    assert_eq!(
        key(&(base.clone()
            + "[policy.document.circuitbreaker.instances.pg]\nfailure_rate_threshold = 120\n")),
        "policy.document.circuitbreaker.instances.pg.failure_rate_threshold"
    );
    assert_eq!(
        key(&base.replace("{ fixed = \"10ms\" }", "{ fixed = \"ten\" }")),
        "dependency.latency.fixed"
    );
}

#[test]
fn a_sweep_runs_the_grid_and_picks_the_best_point_within_the_objective() {
    let loaded = parse(RETRIES).unwrap();
    let param = seawall_lab::sweep::parse_param("retry.pg.maxAttempts=1,2,3").unwrap();
    assert_eq!(param.path, "retry.pg.max_attempts");
    let objective = seawall_lab::sweep::Objective {
        max_p99: None,
        max_amplification: Some(1.6),
    };
    let report = seawall_lab::sweep::sweep(&loaded, vec![param], objective).unwrap();
    assert_eq!(report.rows.len(), 3);
    let amplification: Vec<f64> = report
        .rows
        .iter()
        .map(|r| r.summary.amplification)
        .collect();
    assert!((amplification[0] - 1.0).abs() < 1e-9, "{amplification:?}");
    assert!(amplification[2] > 1.6, "{amplification:?}");
    // Three attempts succeed most but amplify 1.75: two attempts are the best allowed.
    assert_eq!(report.best, Some(1));
    let markdown = seawall_lab::sweep::markdown(&report, "retries");
    assert!(
        markdown.contains("Best: `retry.pg.max_attempts = 2`"),
        "{markdown}"
    );
    assert!(markdown.contains("The 1.3×P95 rule of thumb"), "{markdown}");
}

#[test]
fn a_sweep_parameter_must_name_section_instance_and_key() {
    let err = seawall_lab::sweep::parse_param("failure_rate_threshold=50").unwrap_err();
    assert_eq!(err.key(), "--param");
    let loaded = parse(RETRIES).unwrap();
    let err =
        seawall_lab::sweep::with_value(&loaded, "retry.pg.max_attempts", toml::Value::Integer(0))
            .unwrap_err();
    assert_eq!(err.key(), "policy.document.retry.instances.pg.max_attempts");
}

#[test]
fn a_closed_loop_load_keeps_its_callers_busy() {
    let text = r#"
seed = 2
[load]
concurrency = 10
duration = "10s"
[dependency]
latency = { fixed = "100ms" }
"#;
    let summary = seawall_lab::run(&parse(text).unwrap()).unwrap().summary;
    // 10 callers, each call 100 ms (plus a 100 µs pause): about 1 000 calls in 10 s.
    assert!(
        (980..=1_010).contains(&summary.calls),
        "{} calls",
        summary.calls
    );
    assert_eq!(summary.ok, summary.calls);
    assert_eq!(summary.latency[1], 100_000_000);
}

#[test]
fn the_policy_document_may_be_a_file_next_to_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "retry:\n  instances:\n    pg: { max_attempts: 2, wait_duration: 10ms }\n",
    )
    .unwrap();
    let scenario = RETRIES.replace(
        "[policy.document.retry.instances.pg]\nmax_attempts = 3\nwait_duration = \"10ms\"\n",
        "",
    ) + "[policy]\npath = \"policy.yaml\"\n";
    std::fs::write(dir.path().join("s.toml"), scenario).unwrap();
    let summary = seawall_lab::run_file(&dir.path().join("s.toml"), None)
        .unwrap()
        .summary;
    // Two attempts at 1/2 each: 1.5 requests per call.
    assert!(
        (summary.amplification - 1.5).abs() < 0.06,
        "{}",
        summary.amplification
    );

    std::fs::write(
        dir.path().join("policy.yaml"),
        "retry:\n  instances:\n    pg: { max_attempts: 0 }\n",
    )
    .unwrap();
    let err = seawall_lab::run_file(&dir.path().join("s.toml"), None).unwrap_err();
    assert!(err.key().starts_with("policy.path"), "{err}");
}

#[test]
fn the_docs_command_writes_a_report_per_scenario_and_an_index() {
    let scenarios = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(scenarios.path().join("retries.toml"), RETRIES).unwrap();
    seawall_lab::docs::generate(scenarios.path(), out.path()).unwrap();
    for file in ["retries.md", "retries.svg", "retries.html", "README.md"] {
        assert!(out.path().join(file).exists(), "{file}");
    }
    let index = std::fs::read_to_string(out.path().join("README.md")).unwrap();
    assert!(index.contains("[scenario](retries.md)"), "{index}");
    let page = std::fs::read_to_string(out.path().join("retries.md")).unwrap();
    assert!(page.contains("![timeline](retries.svg)"));
}

#[test]
fn the_live_tuner_moves_the_breakers_slow_call_threshold_to_1_3_times_p95() {
    let text = r#"
seed = 4
[load]
rate = 20
arrivals = "uniform"
duration = "3m"
[dependency]
latency = { fixed = "2s" }
[policy]
tune_every = "1m"
[policy.document.circuitbreaker.instances.pg]
slow_call_duration_threshold = "10s"
"#;
    let output = seawall_lab::run(&parse(text).unwrap()).unwrap();
    let tunings = &output.summary.tunings;
    // P95 = 2 s: 2.6 s at the first run; the next runs see the same P95 and change nothing.
    assert_eq!(tunings.len(), 1, "{tunings:?}");
    assert_eq!(
        tunings[0],
        (60_000_000_000, std::time::Duration::from_millis(2_600))
    );
    assert!(
        output
            .markdown
            .contains("| slow-call tuner | threshold changes | 1 |")
    );
}

#[test]
fn the_labs_predictions_for_the_commerce_demo_stay_within_the_stated_tolerance() {
    use seawall_lab::docs::{DEMO, SETTLED_SUCCESS, TOLERANCE_P99, TOLERANCE_POINTS};
    for measured in DEMO {
        let loaded = shipped(&format!("{}.toml", measured.stem), 1.0);
        let summary = seawall_lab::run(&loaded).unwrap().summary;
        assert_eq!(
            summary.calls,
            u64::from(measured.orders),
            "{}",
            measured.stem
        );
        let demo_rate = 100.0 * f64::from(measured.paid) / f64::from(measured.orders);
        let lab_rate = summary.success_rate() * SETTLED_SUCCESS;
        assert!(
            (demo_rate - lab_rate).abs() <= TOLERANCE_POINTS,
            "{}: demo {demo_rate:.1} %, lab {lab_rate:.1} %",
            measured.stem
        );
        #[allow(clippy::cast_precision_loss)]
        let ratio = summary.latency[1] as f64 / 1e6 / f64::from(measured.p99_ms);
        assert!(
            (1.0 / TOLERANCE_P99..=TOLERANCE_P99).contains(&ratio),
            "{}: p99 ratio {ratio:.2}",
            measured.stem
        );
    }
}
