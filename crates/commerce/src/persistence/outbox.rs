//! The outbox's statements: appending an event in its change's transaction, the relay's
//! batches (on Postgres claimed with `FOR UPDATE SKIP LOCKED` so several relays share the
//! work), marking them published or failed, and the backlog.

use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Connection, Row};

use super::OutboxRow;

/// Ids marked per statement: far under both engines' limits on bound parameters.
const MARK_CHUNK: usize = 500;

const OUTBOX_COLUMNS: &str = "id, aggregate_id, event_type, payload, attempts, next_attempt_at";

fn parse_outbox(r: &AnyRow) -> Result<OutboxRow, sqlx::Error> {
    Ok(OutboxRow {
        id: r.try_get("id")?,
        aggregate_id: r.try_get("aggregate_id")?,
        event_type: r.try_get("event_type")?,
        payload: r.try_get("payload")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
    })
}

/// `$first, $first+1, …` for `n` bound values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|k| format!("${k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The oldest undelivered (and not dead) events, in id order. The relay reads them from
/// the read pool: on SQLite its look then waits for no writer (the write pool is one
/// connection, queued for by every order), and a pass's own marks are committed before its
/// next look.
///
/// # Errors
///
/// A database error.
pub async fn pending_outbox_events(
    conn: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox_events \
         WHERE published_at IS NULL AND dead = 0 ORDER BY id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(parse_outbox)
    .collect()
}

/// Marks delivered events published in one statement per 500 ids (not one
/// per event: the relay's cost was one write per event); returns how many were marked now.
///
/// # Errors
///
/// A database error.
pub async fn mark_outbox_published_batch(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: i64,
) -> Result<u64, sqlx::Error> {
    let mut marked = 0;
    for chunk in ids.chunks(MARK_CHUNK) {
        let placeholders = (2..chunk.len() + 2)
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE outbox_events SET published_at = $1 \
             WHERE published_at IS NULL AND id IN ({placeholders})"
        );
        let mut query = sqlx::query(&sql).bind(now);
        for id in chunk {
            query = query.bind(*id);
        }
        marked += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(marked)
}

/// Records a failed delivery: the next try is at `next_attempt_at`, or never when `dead`.
///
/// # Errors
///
/// A database error.
pub async fn mark_outbox_failed(
    conn: &mut AnyConnection,
    id: i64,
    next_attempt_at: i64,
    dead: bool,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox_events SET attempts = attempts + 1, next_attempt_at = $1, dead = $2, \
         last_error = $3, claimed_by = NULL, claimed_until = NULL WHERE id = $4",
    )
    .bind(next_attempt_at)
    .bind(i64::from(dead))
    .bind(error)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Undelivered events (delivery lag) and the oldest one's creation time.
///
/// # Errors
///
/// A database error.
pub async fn outbox_backlog(conn: &mut AnyConnection) -> Result<(i64, Option<i64>), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox_events \
         WHERE published_at IS NULL AND dead = 0",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("n")?, row.try_get("oldest")?))
}

/// Claims up to `limit` events for `owner` until `claimed_until` (Postgres; several relays
/// share the outbox): in one short transaction, locks the oldest unpublished events nobody
/// else holds a live claim on (`FOR UPDATE SKIP LOCKED`: rows another relay is claiming
/// right now are passed over, not waited for), cuts the batch at the first one still
/// backing off, keeps per-order order with [`keep_key_order`], and records the claim.
/// An expired claim (a dead instance's batch) is taken over: at least once.
///
/// Delivery happens after the commit, outside any transaction, so a slow subscriber holds
/// no row lock; the claim keeps other relays off the batch meanwhile.
///
/// # Errors
///
/// A database error.
pub async fn claim_outbox_batch(
    conn: &mut AnyConnection,
    owner: &str,
    limit: i64,
    now: i64,
    claimed_until: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut batch = sqlx::query(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox_events \
         WHERE published_at IS NULL AND dead = 0 \
           AND (claimed_until IS NULL OR claimed_until < $1 OR claimed_by = $2) \
         ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(owner)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(parse_outbox)
    .collect::<Result<Vec<_>, _>>()?;
    if let Some(waiting) = batch.iter().position(|row| row.next_attempt_at > now) {
        // Waiting out its backoff; later events wait behind it, as on one relay.
        batch.truncate(waiting);
    }
    let Some(last) = batch.last().map(|row| row.id) else {
        // End the transaction now: left to a lazy rollback on drop, its row locks would
        // make this relay's next pass skip (and overtake) the rows it just looked at.
        tx.rollback().await?;
        return Ok(batch);
    };
    let aggregates: Vec<i64> = batch
        .iter()
        .map(|row| row.aggregate_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut pending_sql = format!(
        "SELECT id, aggregate_id FROM outbox_events \
         WHERE published_at IS NULL AND dead = 0 AND id <= $1 AND aggregate_id IN ({})",
        placeholders(2, aggregates.len())
    );
    pending_sql.push_str(" ORDER BY id");
    let mut query = sqlx::query(&pending_sql).bind(last);
    for aggregate in &aggregates {
        query = query.bind(*aggregate);
    }
    let pending = query
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("aggregate_id")?)))
        .collect::<Result<Vec<(i64, i64)>, sqlx::Error>>()?;
    let candidates: Vec<(i64, i64)> = batch.iter().map(|r| (r.id, r.aggregate_id)).collect();
    let kept = keep_key_order(&candidates, &pending);
    batch.retain(|row| kept.contains(&row.id));
    for chunk in batch.chunks(MARK_CHUNK) {
        let sql = format!(
            "UPDATE outbox_events SET claimed_by = $1, claimed_until = $2 WHERE id IN ({})",
            placeholders(3, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(owner).bind(claimed_until);
        for row in chunk {
            query = query.bind(row.id);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(batch)
}

/// Gives back `owner`'s claim on events it will not deliver in this pass (those behind a
/// failed one), so any relay can take them at once rather than after the claim expires.
///
/// # Errors
///
/// A database error.
pub async fn release_outbox_claims(
    conn: &mut AnyConnection,
    owner: &str,
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(MARK_CHUNK) {
        let sql = format!(
            "UPDATE outbox_events SET claimed_by = NULL, claimed_until = NULL \
             WHERE claimed_by = $1 AND published_at IS NULL AND id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(owner);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Appends an event to the outbox (same transaction as the change it announces).
///
/// # Errors
///
/// A database error.
pub async fn insert_outbox(
    conn: &mut AnyConnection,
    aggregate_id: i64,
    event_type: &str,
    payload: &serde_json::Value,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO outbox_events (aggregate_id, event_type, payload, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(aggregate_id)
    .bind(event_type)
    .bind(payload.to_string())
    .bind(now)
    .fetch_one(conn)
    .await
}

/// The claimable events that keep per-order order: `candidates` (id, order) in id order, and
/// `pending`, every unpublished, live event (id, order) of those orders up to the last
/// candidate. A candidate is kept only if every pending event of its order with a smaller id
/// is kept too; so an event never goes out while an older one of its order is held by
/// another relay, backing off, or locked by a concurrent claim. Pure.
pub fn keep_key_order(candidates: &[(i64, i64)], pending: &[(i64, i64)]) -> HashSet<i64> {
    let offered: HashSet<i64> = candidates.iter().map(|(id, _)| *id).collect();
    let mut older: HashMap<i64, Vec<i64>> = HashMap::new();
    for (id, aggregate) in pending {
        older.entry(*aggregate).or_default().push(*id);
    }
    let mut kept = HashSet::new();
    let mut blocked: HashSet<i64> = HashSet::new();
    for (id, aggregate) in candidates {
        if blocked.contains(aggregate) {
            continue;
        }
        let clear = older.get(aggregate).is_none_or(|ids| {
            ids.iter()
                .filter(|other| *other < id)
                .all(|other| offered.contains(other) && kept.contains(other))
        });
        if clear {
            kept.insert(*id);
        } else {
            blocked.insert(*aggregate);
        }
    }
    kept
}

/// Deletes up to `limit` outbox events published before `cutoff` (never an undelivered or
/// dead one); returns how many.
///
/// # Errors
///
/// A database error.
pub async fn prune_published_events(
    conn: &mut AnyConnection,
    cutoff: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM outbox_events WHERE id IN \
           (SELECT id FROM outbox_events WHERE published_at IS NOT NULL \
              AND published_at < $1 ORDER BY id LIMIT $2)",
    )
    .bind(cutoff)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Published outbox events still held (tests, the retention report).
///
/// # Errors
///
/// A database error.
pub async fn published_event_count(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox_events WHERE published_at IS NOT NULL")
        .fetch_one(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_different_orders_are_all_kept() {
        let candidates = [(1, 10), (2, 11), (3, 12)];
        let kept = keep_key_order(&candidates, &candidates);
        assert_eq!(kept, HashSet::from([1, 2, 3]));
    }

    #[test]
    fn an_event_waits_behind_an_older_event_of_its_order_held_elsewhere() {
        // Event 1 of order 10 is claimed or locked by another relay: not a candidate here.
        let candidates = [(2, 10), (3, 11), (4, 10)];
        let pending = [(1, 10), (2, 10), (3, 11), (4, 10)];
        let kept = keep_key_order(&candidates, &pending);
        assert_eq!(kept, HashSet::from([3]));
    }

    #[test]
    fn once_an_order_is_blocked_its_later_events_stay_behind() {
        // 2 (order 10) is locked by a concurrent claim; 1 and 3 are offered here.
        let candidates = [(1, 10), (3, 10), (4, 12)];
        let pending = [(1, 10), (2, 10), (3, 10), (4, 12)];
        let kept = keep_key_order(&candidates, &pending);
        assert_eq!(kept, HashSet::from([1, 4]));
    }

    #[test]
    fn nothing_offered_keeps_nothing() {
        assert!(keep_key_order(&[], &[(1, 1)]).is_empty());
    }
}
