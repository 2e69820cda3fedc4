//! Runs every example binary as a user would, and checks that it exits cleanly and tells the
//! story it promises.
//!
//! The examples that talk to an in-process server run on the wall clock, so the checks read
//! only what the examples' logic decides (the order of answers, state changes, counts that a
//! slow machine cannot change), never how long anything took.

use std::process::Command;

/// Runs a built example and returns what it printed, failing with its whole output when it
/// does not exit 0.
fn run(binary: &str) -> String {
    let output = Command::new(binary)
        .output()
        .unwrap_or_else(|err| panic!("cannot start {binary}: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{binary} exited with {}\n--- stdout\n{stdout}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Fails with the whole output when `needle` is missing.
fn assert_prints(stdout: &str, needle: &str) {
    assert!(
        stdout.contains(needle),
        "expected {needle:?} in the output:\n{stdout}"
    );
}

/// The number after `label` on the line that starts with it (after indentation).
fn count(stdout: &str, label: &str) -> usize {
    stdout
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no count for {label:?} in the output:\n{stdout}"))
}

#[test]
fn http_call_retries_a_503_then_opens_the_breaker_answers_from_the_fallback_and_recovers() {
    let stdout = run(env!("CARGO_BIN_EXE_http_call"));
    assert_prints(&stdout, "call 1: 200 \"3 items in stock\" on attempt 2");
    assert_prints(&stdout, "call 4: error: gave up after 3 attempts");
    assert_prints(&stdout, "'catalog': CLOSED -> OPEN");
    assert_prints(
        &stdout,
        "call 5: fallback: \"catalog temporarily unavailable",
    );
    assert_prints(&stdout, "'catalog': OPEN -> HALF_OPEN");
    assert_prints(&stdout, "'catalog': HALF_OPEN -> CLOSED");
    assert_prints(&stdout, "breaker state at the end: CLOSED");
}

#[test]
fn streaming_counts_broken_streams_as_failures_and_dropped_permits_as_nothing() {
    let stdout = run(env!("CARGO_BIN_EXE_streaming"));
    assert_prints(&stdout, "read 1: complete: 5 lines");
    assert_prints(&stdout, "read 3: broke after 2 lines");
    assert_prints(&stdout, "breaker: CLOSED -> OPEN");
    assert_prints(&stdout, "read 4: not even connecting");
    assert_prints(&stdout, "the permit was dropped unfinished");
    assert_prints(
        &stdout,
        "nothing recorded: HALF_OPEN, 0 calls recorded (0 failed); probe slot given back: a new read is permitted: true",
    );
    assert_prints(&stdout, "read 6: complete");
    assert_prints(&stdout, "at the end: breaker CLOSED");
}

#[test]
fn load_shedding_answers_a_burst_with_200_429_and_503_and_lets_a_patient_client_in() {
    let stdout = run(env!("CARGO_BIN_EXE_load_shedding"));
    let ok = count(&stdout, "200 OK:");
    let too_many = count(&stdout, "429 Too Many Requests:");
    let unavailable = count(&stdout, "503 Service Unavailable:");
    assert_eq!(
        ok + too_many + unavailable,
        40,
        "every request answered:\n{stdout}"
    );
    // Bounds that hold however slowly the burst arrives: the first five requests through the
    // limiter fill the bulkhead, and the limiter's burst of 20 is far below 40.
    assert!(ok >= 5, "the bulkhead's five workers answered:\n{stdout}");
    assert!(too_many >= 1, "the limiter shed the excess:\n{stdout}");
    assert!(unavailable >= 1, "the bulkhead shed the excess:\n{stdout}");
    assert_prints(&stdout, "(Retry-After: 1 s)");
    assert_prints(&stdout, "one more request: 200 OK");
}

#[test]
fn registry_loads_the_yaml_document_and_changes_a_threshold_while_running() {
    let stdout = run(env!("CARGO_BIN_EXE_registry"));
    assert_prints(&stdout, "registry.yaml");
    assert_prints(&stdout, "slow-call threshold Some(2s) -> Some(1.5s)");
    assert_prints(&stdout, "state OPEN kept");
    assert_prints(&stdout, "an invalid change is rejected whole");
}

#[test]
fn payment_call_compares_bare_and_protected_calls_on_both_gateways() {
    let stdout = run(env!("CARGO_BIN_EXE_payment_call"));
    for row in [
        "| Flaky gateway, bare call ",
        "| Flaky gateway, seawall policy ",
        "| Dead gateway, bare call ",
        "| Dead gateway, seawall policy ",
    ] {
        assert_prints(&stdout, row);
    }
}
