//! Command-line flags of the binary. They override the config file, which overrides the
//! canonical defaults. Kept in the library so the parsing is testable.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::config::{CallbackRetry, ConfigError, Latency, SimConfig};
use crate::fault::Fault;

/// `pg-simulator`: a faithful simulated card payment gateway with fault injection.
#[derive(Debug, Parser)]
#[command(name = "pg-simulator", version, about)]
pub struct Args {
    /// TOML config file (see the crate README); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Start from the `instant` test preset instead of the canonical gateway.
    #[arg(long)]
    pub instant: bool,
    /// Interface of the payment API.
    #[arg(long)]
    pub host: Option<String>,
    /// Port of the payment API (canonical 8082).
    #[arg(long, short)]
    pub port: Option<u16>,
    /// Enable the control plane on this port (0 = any free port).
    #[arg(long, value_name = "PORT")]
    pub control_port: Option<u16>,
    /// Seed of every random decision.
    #[arg(long)]
    pub seed: Option<u64>,
    /// POST latency: `none`, `fixed:200ms`, `100ms..500ms`, `long-tail:median=..,p99=..,max=..`.
    #[arg(long, value_name = "SPEC")]
    pub latency: Option<Latency>,
    /// Query latency (same syntax).
    #[arg(long, value_name = "SPEC")]
    pub query_latency: Option<Latency>,
    /// Probability of the canonical pre-create 500 (0..=1).
    #[arg(long, value_name = "P")]
    pub fail_rate: Option<f64>,
    /// Processing delay (same syntax as --latency).
    #[arg(long, value_name = "SPEC")]
    pub processing_delay: Option<Latency>,
    /// Concurrent processing / callback permits.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Outcome weights `SUCCESS,LIMIT_EXCEEDED,INVALID_CARD`, e.g. `70,20,10`.
    #[arg(long, value_name = "S,L,I")]
    pub outcomes: Option<String>,
    /// Allowed callback target: callbackUrl must have its scheme, host and port.
    #[arg(long, value_name = "URL")]
    pub callback_prefix: Option<String>,
    /// Also accept any loopback callback URL.
    #[arg(long)]
    pub allow_any_loopback_callback: bool,
    /// Timeout of one callback attempt, e.g. `5s`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub callback_timeout: Option<Duration>,
    /// Callback signing secret (repeat for rotation).
    #[arg(long = "callback-secret", value_name = "SECRET")]
    pub callback_secrets: Vec<String>,
    /// Callback retries: `none`, `fixed:3x500ms`, `toss:100ms` (unit, 7 retries) or
    /// `toss:100msx3`.
    #[arg(long, value_name = "SPEC", value_parser = parse_retry)]
    pub callback_retry: Option<CallbackRetry>,
    /// Enable the Idempotency-Key extension.
    #[arg(long)]
    pub idempotency: bool,
    /// Enable the cancel endpoint.
    #[arg(long)]
    pub cancel: bool,
    /// One transaction per (user, order).
    #[arg(long)]
    pub one_tx_per_order: bool,
    /// Honour magic card numbers `4000-0000-0000-NNNN` (off: they let whoever picks the card
    /// number pick the outcome).
    #[arg(long)]
    pub magic_cards: bool,
    /// Mask card numbers in responses and callbacks.
    #[arg(long)]
    pub mask_pan: bool,
    /// Most transactions kept in memory.
    #[arg(long, value_name = "N")]
    pub retention: Option<usize>,
    /// Keep the ledger in this file and load it at start (survives a restart; the file holds
    /// full card numbers).
    #[arg(long, value_name = "FILE")]
    pub ledger_file: Option<PathBuf>,
    /// A payment fault probability, `name=P` (repeatable), e.g. `error-after-create=0.1`.
    #[arg(long = "fault", value_name = "NAME=P", value_parser = parse_rate)]
    pub faults: Vec<(Fault, f64)>,
    /// A query fault probability, `name=P` (repeatable), e.g. `query-error=0.2`.
    #[arg(long = "query-fault", value_name = "NAME=P", value_parser = parse_rate)]
    pub query_faults: Vec<(Fault, f64)>,
}

fn parse_rate(s: &str) -> Result<(Fault, f64), String> {
    let (name, p) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=P, got `{s}`"))?;
    let fault = name.trim().parse::<Fault>().map_err(|e| e.to_string())?;
    let p = p.trim().parse::<f64>().map_err(|e| format!("`{p}`: {e}"))?;
    Ok((fault, p))
}

fn parse_retry(s: &str) -> Result<CallbackRetry, String> {
    let d = |v: &str| humantime::parse_duration(v).map_err(|e| format!("`{v}`: {e}"));
    match s.split_once(':') {
        None if s == "none" => Ok(CallbackRetry::None),
        Some(("fixed", rest)) => {
            let (n, interval) = rest
                .split_once('x')
                .ok_or_else(|| format!("expected fixed:Nx<interval>, got `{s}`"))?;
            Ok(CallbackRetry::Fixed {
                retries: n.parse().map_err(|e| format!("`{n}`: {e}"))?,
                interval: d(interval)?,
            })
        }
        Some(("toss", rest)) => {
            let (unit, retries) = match rest.split_once('x') {
                Some((u, n)) => (u, n.parse().map_err(|e| format!("`{n}`: {e}"))?),
                None => (rest, 7),
            };
            Ok(CallbackRetry::TossLike {
                unit: d(unit)?,
                retries,
            })
        }
        _ => Err(format!("unknown retry spec `{s}`")),
    }
}

impl Args {
    /// The config these flags describe: defaults (or `--instant`), then the file, then flags.
    ///
    /// # Errors
    ///
    /// An unreadable or invalid file, or a flag value that makes the config invalid.
    pub fn into_config(self) -> Result<SimConfig, ConfigError> {
        let mut c = match &self.config {
            Some(path) => SimConfig::from_toml_file(path)?,
            None if self.instant => SimConfig::instant(),
            None => SimConfig::canonical(),
        };
        if self.instant && self.config.is_some() {
            let file = c;
            c = SimConfig::instant();
            c.server = file.server;
            c.control = file.control;
        }
        if let Some(v) = self.host {
            c.server.host = v;
        }
        if let Some(v) = self.port {
            c.server.port = v;
        }
        if let Some(v) = self.control_port {
            c.control.enabled = true;
            c.control.port = v;
        }
        if self.seed.is_some() {
            c.seed = self.seed;
        }
        if let Some(v) = self.latency {
            c.request.latency = v;
        }
        if let Some(v) = self.query_latency {
            c.query.latency = v;
        }
        if let Some(v) = self.fail_rate {
            c.request.fail_rate = v;
        }
        if let Some(v) = self.processing_delay {
            c.processing.delay = v;
        }
        if let Some(v) = self.concurrency {
            c.processing.concurrency = v;
        }
        if let Some(v) = self.outcomes {
            let parts: Vec<u32> = v
                .split(',')
                .map(|p| p.trim().parse::<u32>())
                .collect::<Result<_, _>>()
                .map_err(|e| ConfigError::new("--outcomes", e.to_string()))?;
            let [success, limit_exceeded, invalid_card] = parts[..] else {
                return Err(ConfigError::new("--outcomes", "expected three weights"));
            };
            c.processing.outcomes = crate::config::OutcomeWeights {
                success,
                limit_exceeded,
                invalid_card,
            };
        }
        if let Some(v) = self.callback_prefix {
            c.callback.url_prefix = v;
        }
        c.callback.allow_any_loopback |= self.allow_any_loopback_callback;
        if self.callback_timeout.is_some() {
            c.callback.timeout = self.callback_timeout;
        }
        c.callback.secrets.extend(self.callback_secrets);
        if let Some(v) = self.callback_retry {
            c.callback.retry = v;
        }
        c.idempotency.enabled |= self.idempotency;
        c.extensions.cancel |= self.cancel;
        c.extensions.one_tx_per_order |= self.one_tx_per_order;
        c.mask_pan_in_responses |= self.mask_pan;
        c.triggers.magic_cards |= self.magic_cards;
        if let Some(v) = self.retention {
            c.ledger.retention = v;
        }
        if self.ledger_file.is_some() {
            c.ledger.file = self.ledger_file;
        }
        c.faults.rates.extend(self.faults);
        c.faults.query_rates.extend(self.query_faults);
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_defaults() {
        let args = Args::parse_from([
            "pg-simulator",
            "--port",
            "9000",
            "--latency",
            "fixed:20ms",
            "--fail-rate",
            "0",
            "--fault",
            "drop-callback=0.5",
            "--callback-retry",
            "toss:10msx3",
            "--callback-secret",
            "s1",
            "--outcomes",
            "1,0,0",
            "--control-port",
            "0",
        ]);
        let c = args.into_config().unwrap();
        assert_eq!(c.server.port, 9000);
        assert_eq!(c.request.latency, Latency::fixed(Duration::from_millis(20)));
        assert!(c.request.fail_rate.abs() < f64::EPSILON);
        assert_eq!(c.faults.rates.get(&Fault::DropCallback), Some(&0.5));
        assert_eq!(
            c.callback.retry,
            CallbackRetry::TossLike {
                unit: Duration::from_millis(10),
                retries: 3
            }
        );
        assert_eq!(c.callback.secrets, vec!["s1".to_owned()]);
        assert_eq!(c.processing.outcomes.success, 1);
        assert!(c.control.enabled);
    }

    #[test]
    fn no_flags_is_the_canonical_gateway() {
        let c = Args::parse_from(["pg-simulator"]).into_config().unwrap();
        assert_eq!(c, SimConfig::canonical());
    }

    #[test]
    fn magic_cards_are_off_unless_asked_for() {
        let off = Args::parse_from(["pg-simulator"]).into_config().unwrap();
        assert!(!off.triggers.magic_cards);
        let on = Args::parse_from(["pg-simulator", "--magic-cards"])
            .into_config()
            .unwrap();
        assert!(on.triggers.magic_cards);
    }

    #[test]
    fn the_ledger_file_flag_names_the_file() {
        let c = Args::parse_from(["pg-simulator", "--ledger-file", "pg.jsonl"])
            .into_config()
            .unwrap();
        assert_eq!(c.ledger.file, Some(PathBuf::from("pg.jsonl")));
        assert_eq!(SimConfig::canonical().ledger.file, None);
    }

    #[test]
    fn bad_flag_values_are_rejected() {
        let c = Args::parse_from(["pg-simulator", "--fail-rate", "2"]).into_config();
        assert!(c.is_err());
        assert!(Args::try_parse_from(["pg-simulator", "--fault", "bogus=1"]).is_err());
    }
}
