//! The recovery job's lease (one runner across instances) and its round records.
//!
//! A lease row (`job_leases`) has an owner, an expiry and a **generation**: every acquisition
//! bumps it and returns it as the holder's fencing token. The lease is not re-entrant: an
//! unexpired lease is refused to everyone, its own owner included, so two rounds of one
//! instance cannot share it. Renewal and release match on the generation, so a round whose
//! lease expired and was taken by another can neither extend nor release the new holder's.
//!
//! Every round that took the lease leaves a `recovery_rounds` row (instance, generation,
//! start, end, outcome): the record that shows no two rounds overlapped.

use std::time::Duration;

use sqlx::{AnyConnection, Row};

/// A lease held: what renewal and release must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The lease's name (`recovery`).
    pub name: String,
    /// Who holds it.
    pub owner: String,
    /// The fencing token of this acquisition.
    pub generation: i64,
    /// Until when it is held (ms since the epoch), as last taken or renewed.
    pub expires_at: i64,
}

/// One recovery round as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundRecord {
    /// Row id.
    pub id: i64,
    /// The instance that ran it.
    pub instance_id: String,
    /// The lease generation it ran under.
    pub generation: i64,
    /// `recovery` or `admin`.
    pub source: String,
    /// When it took the lease (ms since the epoch).
    pub started_at: i64,
    /// When it ended; `None` while it runs, or when its process died.
    pub ended_at: Option<i64>,
    /// `done`, `lease lost`, `failed: …`, or `abandoned` (its process died).
    pub outcome: Option<String>,
    /// Until when its lease was last taken or renewed: a round cut short by a crash wrote
    /// nothing after it.
    pub lease_until: i64,
}

fn until(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

/// Takes the lease `name` for `owner` until `now + ttl` when nobody holds it unexpired,
/// its owner included (not re-entrant). Returns the lease with its new generation, or
/// `None` when it is held.
///
/// # Errors
///
/// A database error.
pub async fn try_acquire_lease(
    conn: &mut AnyConnection,
    name: &str,
    owner: &str,
    now: i64,
    ttl: Duration,
) -> Result<Option<Lease>, sqlx::Error> {
    let generation: Option<i64> = sqlx::query_scalar(
        "UPDATE job_leases SET owner = $1, expires_at = $2, generation = generation + 1 \
         WHERE name = $3 AND (owner IS NULL OR expires_at < $4) RETURNING generation",
    )
    .bind(owner)
    .bind(until(now, ttl))
    .bind(name)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(generation.map(|generation| Lease {
        name: name.to_owned(),
        owner: owner.to_owned(),
        generation,
        expires_at: until(now, ttl),
    }))
}

/// Extends `lease` to `now + ttl` if it is still this generation's (nobody took it since,
/// even after it expired), and notes the new expiry on the round's record `round` when
/// given. False: the lease was lost; the round must stop writing.
///
/// # Errors
///
/// A database error.
pub async fn renew_lease(
    conn: &mut AnyConnection,
    lease: &mut Lease,
    round: Option<i64>,
    now: i64,
    ttl: Duration,
) -> Result<bool, sqlx::Error> {
    let expires_at = until(now, ttl);
    let done = sqlx::query(
        "UPDATE job_leases SET expires_at = $1 \
         WHERE name = $2 AND owner = $3 AND generation = $4",
    )
    .bind(expires_at)
    .bind(&lease.name)
    .bind(&lease.owner)
    .bind(lease.generation)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    lease.expires_at = expires_at;
    if let Some(round) = round {
        sqlx::query("UPDATE recovery_rounds SET lease_until = $1 WHERE id = $2")
            .bind(expires_at)
            .bind(round)
            .execute(&mut *conn)
            .await?;
    }
    Ok(true)
}

/// Gives `lease` back if it is still this generation's; returns whether it was.
///
/// # Errors
///
/// A database error.
pub async fn release_lease(conn: &mut AnyConnection, lease: &Lease) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE job_leases SET owner = NULL, expires_at = 0 \
         WHERE name = $1 AND owner = $2 AND generation = $3",
    )
    .bind(&lease.name)
    .bind(&lease.owner)
    .bind(lease.generation)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// At start-up: frees a lease left held under this instance's own name by its previous
/// process (killed in the middle of a round: a process that is only starting runs no
/// round), and marks that process's unfinished rounds `abandoned`, ended now or when
/// their lease ran out, whichever came first. Returns whether a lease was freed.
///
/// # Errors
///
/// A database error.
pub async fn reclaim_own_lease(
    conn: &mut AnyConnection,
    name: &str,
    owner: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let freed = sqlx::query(
        "UPDATE job_leases SET owner = NULL, expires_at = 0 WHERE name = $1 AND owner = $2",
    )
    .bind(name)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE recovery_rounds SET outcome = 'abandoned', \
           ended_at = CASE WHEN lease_until < $1 THEN lease_until ELSE $1 END \
         WHERE instance_id = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(freed.rows_affected() == 1)
}

/// Records the start of a round run under `lease`; returns the record's id.
///
/// # Errors
///
/// A database error.
pub async fn record_round_start(
    conn: &mut AnyConnection,
    lease: &Lease,
    source: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO recovery_rounds (instance_id, generation, source, started_at, lease_until) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&lease.owner)
    .bind(lease.generation)
    .bind(source)
    .bind(now)
    .bind(lease.expires_at)
    .fetch_one(&mut *conn)
    .await
}

/// Records the end of round `id` and how it ended.
///
/// # Errors
///
/// A database error.
pub async fn record_round_end(
    conn: &mut AnyConnection,
    id: i64,
    now: i64,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE recovery_rounds SET ended_at = $1, outcome = $2 WHERE id = $3")
        .bind(now)
        .bind(outcome)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The recorded rounds, in start order (tests, operators).
///
/// # Errors
///
/// A database error.
pub async fn recovery_rounds(conn: &mut AnyConnection) -> Result<Vec<RoundRecord>, sqlx::Error> {
    sqlx::query(
        "SELECT id, instance_id, generation, source, started_at, ended_at, outcome, lease_until \
         FROM recovery_rounds ORDER BY started_at, id",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(RoundRecord {
            id: r.try_get("id")?,
            instance_id: r.try_get("instance_id")?,
            generation: r.try_get("generation")?,
            source: r.try_get("source")?,
            started_at: r.try_get("started_at")?,
            ended_at: r.try_get("ended_at")?,
            outcome: r.try_get("outcome")?,
            lease_until: r.try_get("lease_until")?,
        })
    })
    .collect()
}

/// The first pair of rounds that overlap in time (pure: for tests and checks over
/// [`recovery_rounds`]). A round with no end (still running, or its process died and
/// was not restarted) counts as lasting until its lease ran out.
pub fn overlapping_rounds(rounds: &[RoundRecord]) -> Option<(&RoundRecord, &RoundRecord)> {
    let mut sorted: Vec<&RoundRecord> = rounds.iter().collect();
    sorted.sort_by_key(|r| (r.started_at, r.id));
    let mut latest_end: Option<&RoundRecord> = None;
    for round in sorted {
        if let Some(before) = latest_end
            && round.started_at < before.ended_at.unwrap_or(before.lease_until)
        {
            return Some((before, round));
        }
        let end = round.ended_at.unwrap_or(round.lease_until);
        if latest_end.is_none_or(|b| end > b.ended_at.unwrap_or(b.lease_until)) {
            latest_end = Some(round);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(id: i64, started_at: i64, ended_at: Option<i64>) -> RoundRecord {
        round_until(id, started_at, ended_at, started_at + 60)
    }

    fn round_until(
        id: i64,
        started_at: i64,
        ended_at: Option<i64>,
        lease_until: i64,
    ) -> RoundRecord {
        RoundRecord {
            id,
            instance_id: format!("i{id}"),
            generation: id,
            source: "recovery".to_owned(),
            started_at,
            ended_at,
            outcome: ended_at.map(|_| "done".to_owned()),
            lease_until,
        }
    }

    #[test]
    fn rounds_that_follow_each_other_do_not_overlap_even_within_one_millisecond() {
        let rounds = [
            round(1, 10, Some(20)),
            round(2, 20, Some(30)),
            round(3, 31, Some(31)),
        ];
        assert_eq!(overlapping_rounds(&rounds), None);
    }

    #[test]
    fn a_round_starting_before_the_previous_one_ended_is_an_overlap() {
        let rounds = [round(2, 15, Some(30)), round(1, 10, Some(20))];
        let (first, second) = overlapping_rounds(&rounds).unwrap();
        assert_eq!((first.id, second.id), (1, 2));
    }

    #[test]
    fn a_round_inside_a_long_one_overlaps_it_even_after_a_short_one() {
        let rounds = [
            round(1, 10, Some(100)),
            round(2, 20, Some(30)),
            round(3, 40, Some(50)),
        ];
        let (first, second) = overlapping_rounds(&rounds).unwrap();
        assert_eq!((first.id, second.id), (1, 2));
    }

    #[test]
    fn an_unfinished_round_lasts_until_its_lease_ran_out() {
        let crashed = round_until(1, 10, None, 45);
        assert!(overlapping_rounds(&[crashed.clone(), round(2, 40, Some(60))]).is_some());
        assert!(overlapping_rounds(&[crashed, round(2, 45, Some(60))]).is_none());
    }
}
