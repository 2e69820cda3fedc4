//! The ledger file (`ledger.file`): the transactions on disk, so a simulator restarted on the
//! same file still knows every charge it made. A PG does not forget a charge because its process
//! died; a client that reconciles after a crash must find what it was told about.
//!
//! # Format
//!
//! JSON Lines (UTF-8): one [`Record`] per line, the whole state of one transaction after a
//! change (created, completed, canceled), e.g.
//!
//! ```text
//! {"transactionKey":"20250816:TR:9577c5","userId":"1","orderId":"ORD-000042","cardType":"SAMSUNG",
//!  "cardNo":"1234-5678-9012-3456","amount":5000,"callbackUrl":"http://localhost:8080/cb",
//!  "status":"PENDING","createdAtUnixMs":…,"updatedAtUnixMs":…,"faults":[],
//!  "outcome":"SUCCESS","processAtUnixMs":…,"idempotency":{"key":"K1","fingerprint":"…"}}
//! ```
//!
//! (one line in the file). `outcome` and `processAtUnixMs` are the processing already decided
//! for a PENDING transaction, so a restarted simulator finishes it the same way; `fingerprint`
//! is a SHA-256 of the request, never the request.
//!
//! # Life cycle
//!
//! - Start: every line is read; the last record of a key wins and a key's first line gives its
//!   place in the creation order. A torn last line (the process died while writing it) is
//!   dropped with a WARN; any other unreadable line stops the start. The state is then written
//!   to `FILE.tmp`, flushed to disk and renamed over `FILE` (one line per transaction).
//! - Every change appends its line with one `write` before the change is visible, so a
//!   transaction a client was told about is in the file. A killed process loses nothing written;
//!   a power cut may lose the last lines (no flush per line).
//! - Past twice the retained transactions (at least [`MIN_COMPACTION_LINES`]) the file is
//!   compacted the same way, so it stays bounded like the ledger.
//!
//! The file holds full card numbers, as the PG's own table does; it is created with mode 0600.
//! One simulator per file.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fault::ActiveFault;
use crate::model::{CardType, Outcome, TransactionStatus};

/// Lines appended before the first compaction is considered, whatever the ledger's size.
pub(crate) const MIN_COMPACTION_LINES: u64 = 1_024;

/// One line of the file: a transaction after a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record {
    pub(crate) transaction_key: String,
    pub(crate) user_id: String,
    pub(crate) order_id: String,
    pub(crate) card_type: CardType,
    pub(crate) card_no: String,
    pub(crate) amount: i64,
    pub(crate) callback_url: String,
    pub(crate) status: TransactionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    pub(crate) created_at_unix_ms: u64,
    pub(crate) updated_at_unix_ms: u64,
    pub(crate) faults: Vec<ActiveFault>,
    pub(crate) outcome: Outcome,
    pub(crate) process_at_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) idempotency: Option<IdempotencyRecord>,
}

/// The `Idempotency-Key` a transaction was created under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub(crate) key: String,
    /// SHA-256 (hex) of the request's fields.
    pub(crate) fingerprint: String,
}

/// The file could not be read, parsed or written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ledger file {path}: {reason}")]
pub(crate) struct JournalError {
    pub(crate) path: String,
    pub(crate) reason: String,
}

impl JournalError {
    fn new(path: &Path, reason: &dyn std::fmt::Display) -> Self {
        Self {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The open file, appended to.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    lines: u64,
}

/// Reads every record of `path` (none if the file does not exist), in creation order, the last
/// state of each transaction.
pub(crate) fn load(path: &Path) -> Result<Vec<Record>, JournalError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(JournalError::new(path, &e)),
    };
    let mut order: Vec<String> = Vec::new();
    let mut latest: HashMap<String, Record> = HashMap::new();
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let last = lines.len() - 1;
    for (index, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: Record = match serde_json::from_slice(line) {
            Ok(record) => record,
            // No newline after it: the write was cut by the end of the process.
            Err(e) if index == last => {
                tracing::warn!(path = %path.display(), error = %e, "dropping a torn last line");
                continue;
            }
            Err(e) => {
                return Err(JournalError::new(path, &format!("line {}: {e}", index + 1)));
            }
        };
        if !latest.contains_key(&record.transaction_key) {
            order.push(record.transaction_key.clone());
        }
        latest.insert(record.transaction_key.clone(), record);
    }
    Ok(order
        .into_iter()
        .filter_map(|key| latest.remove(&key))
        .collect())
}

impl Journal {
    /// Replaces `path` with `records` (through a temporary file renamed over it) and opens it
    /// for appending.
    pub(crate) fn create(
        path: &Path,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Self, JournalError> {
        let lines = rewrite(path, records)?;
        let file = open_append(path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            lines,
        })
    }

    /// Appends one record with a single write.
    pub(crate) fn append(&mut self, record: &Record) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(record).map_err(|e| JournalError::new(&self.path, &e))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| JournalError::new(&self.path, &e))?;
        self.lines += 1;
        Ok(())
    }

    /// Whether the file has grown past twice the `live` transactions it describes.
    pub(crate) fn wants_compaction(&self, live: usize) -> bool {
        let live = u64::try_from(live).unwrap_or(u64::MAX);
        self.lines > live.saturating_mul(2).max(MIN_COMPACTION_LINES)
    }

    /// Rewrites the file with only `records`.
    pub(crate) fn compact(
        &mut self,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<(), JournalError> {
        *self = Self::create(&self.path, records)?;
        Ok(())
    }
}

fn rewrite(path: &Path, records: impl IntoIterator<Item = Record>) -> Result<u64, JournalError> {
    let err = |e: std::io::Error| JournalError::new(path, &e);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut out = std::io::BufWriter::new(new_file(&tmp, true).map_err(err)?);
    let mut lines = 0;
    for record in records {
        serde_json::to_writer(&mut out, &record).map_err(|e| JournalError::new(path, &e))?;
        out.write_all(b"\n").map_err(err)?;
        lines += 1;
    }
    let file = out.into_inner().map_err(|e| err(e.into_error()))?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)?;
    // The rename itself is durable once the directory is.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(lines)
}

fn open_append(path: &Path) -> Result<File, JournalError> {
    new_file(path, false).map_err(|e| JournalError::new(path, &e))
}

/// Opens for writing (truncating, or appending), creating with mode 0600 where that exists.
fn new_file(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, status: TransactionStatus) -> Record {
        Record {
            transaction_key: key.into(),
            user_id: "u1".into(),
            order_id: "order-1".into(),
            card_type: CardType::Kb,
            card_no: "1234-5678-9012-3456".into(),
            amount: 5000,
            callback_url: "http://localhost:8080/cb".into(),
            status,
            reason: None,
            created_at_unix_ms: 1,
            updated_at_unix_ms: 1,
            faults: Vec::new(),
            outcome: Outcome::Success,
            process_at_unix_ms: 2,
            idempotency: None,
        }
    }

    #[test]
    fn the_last_record_of_a_key_wins_in_creation_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let mut journal = Journal::create(&path, std::iter::empty()).unwrap();
        journal
            .append(&record("a", TransactionStatus::Pending))
            .unwrap();
        journal
            .append(&record("b", TransactionStatus::Pending))
            .unwrap();
        journal
            .append(&record("a", TransactionStatus::Success))
            .unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(
            loaded
                .iter()
                .map(|r| (r.transaction_key.as_str(), r.status))
                .collect::<Vec<_>>(),
            vec![
                ("a", TransactionStatus::Success),
                ("b", TransactionStatus::Pending)
            ]
        );
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_a_torn_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let good = serde_json::to_string(&record("a", TransactionStatus::Pending)).unwrap();
        std::fs::write(&path, format!("{good}\n{}", &good[..good.len() / 2])).unwrap();
        assert_eq!(load(&path).unwrap().len(), 1);
        std::fs::write(&path, format!("{}\n{good}\n", &good[..good.len() / 2])).unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.reason.starts_with("line 1:"), "{err}");
    }

    #[test]
    fn compaction_keeps_one_line_per_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let mut journal = Journal::create(&path, std::iter::empty()).unwrap();
        let a = record("a", TransactionStatus::Success);
        for _ in 0..3 {
            journal.append(&a).unwrap();
        }
        journal.compact([a]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(!journal.wants_compaction(1));
    }

    #[cfg(unix)]
    #[test]
    fn only_the_owner_can_read_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        Journal::create(&path, std::iter::empty()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
