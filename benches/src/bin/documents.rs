//! Checks that a document of any shape, just under the 1 MiB limit, is accepted or refused
//! within a second: every shape of `benches::documents` in every format it has, parsed
//! (`Document::parse`) and built (`Registries::from_str`) a few times. Prints a table and
//! exits 1 if any median is over the limit.
//!
//! ```sh
//! cargo run -p benches --release --bin documents            # every shape, 5 runs each
//! cargo run -p benches --release --bin documents -- --runs 3 --shape long-key --bytes 65536
//! ```

use std::process::ExitCode;
use std::time::Duration;

use benches::documents::{FORMATS, TARGET_BYTES, shapes, sized};
use seawall::registry::document::Document;
use seawall::registry::{BuildContext, Registries};

/// The promise: a document is accepted or refused within this.
const LIMIT: Duration = Duration::from_secs(1);

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Runs `f` and returns its result and how long it took.
#[allow(clippy::disallowed_methods)] // wall-clock time is the measurement
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = std::time::Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn instances(registries: &Registries) -> usize {
    registries.circuit_breakers().names().len()
        + registries.retries().names().len()
        + registries.bulkheads().names().len()
        + registries.timeouts().names().len()
        + registries.rate_limiters().names().len()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 5usize;
    let mut only: Option<String> = None;
    let mut bytes = TARGET_BYTES;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match (arg.as_str(), rest.next()) {
            ("--runs", Some(n)) => runs = n.parse().expect("--runs takes a number"),
            ("--shape", Some(name)) => only = Some(name.clone()),
            ("--bytes", Some(n)) => bytes = n.parse().expect("--bytes takes a number"),
            _ => {
                eprintln!("usage: documents [--runs N] [--shape NAME] [--bytes N]");
                return ExitCode::from(2);
            }
        }
    }

    println!(
        "{:<36} {:<5} {:>9}  {:<44} {:>10} {:>10}",
        "shape", "fmt", "bytes", "outcome", "parse", "parse+build"
    );
    let mut worst = (Duration::ZERO, String::new());
    for shape in shapes() {
        if only.as_deref().is_some_and(|name| name != shape.name) {
            continue;
        }
        for (format, format_name) in FORMATS {
            let Some(text) = sized(shape, format, bytes) else {
                continue;
            };
            let mut parse_times = Vec::new();
            let mut total_times = Vec::new();
            let mut outcome = String::new();
            for _ in 0..runs.max(1) {
                let (parsed, parse) = timed(|| Document::parse(&text, format));
                let (built, total) =
                    timed(|| Registries::from_str(&text, format, BuildContext::default()));
                parse_times.push(parse);
                total_times.push(total);
                outcome = match (&parsed, &built) {
                    (_, Ok(registries)) => {
                        format!("accepted ({} instances)", instances(registries))
                    }
                    (Ok(_), Err(err)) => format!("built: refused at {}", err.key()),
                    (Err(err), _) => format!("refused at {}", err.key()),
                };
                drop(built);
            }
            let outcome: String = outcome.chars().take(44).collect();
            let (parse, total) = (median(parse_times), median(total_times));
            println!(
                "{:<36} {:<5} {:>9}  {:<44} {:>10.1?} {:>10.1?}",
                shape.name,
                format_name,
                text.len(),
                outcome,
                parse,
                total
            );
            if total > worst.0 {
                worst = (total, format!("{} ({format_name})", shape.name));
            }
        }
    }
    println!("worst: {} at {:.1?} (limit {LIMIT:?})", worst.1, worst.0);
    if worst.0 > LIMIT {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
