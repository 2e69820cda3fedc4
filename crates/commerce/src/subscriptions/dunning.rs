//! The dunning schedule as a pure function: what a subscription becomes after a billing
//! attempt's outcome, decided from `(schedule, outcome, now)` alone, so every case is tested
//! synchronously and exactly (see the tests below).
//!
//! - **Success**: the period is paid; the subscription is `ACTIVE` and the next attempt is the
//!   next period's billing date (counted from the billed period's date, not from `now`, so a
//!   late payment does not shift the calendar).
//! - **System failure** (the PG not reached, our breaker open, an error before anything was
//!   created): `PAST_DUE`, and the next attempt at +1, +3, +7 and +14 days from the *first*
//!   failure of the period; the failure after the last retry cancels the subscription
//!   (exhaustion).
//! - **Business decline** (limit exceeded, invalid card): `PAST_DUE` with no retry scheduled;
//!   only a card update ([`card_updated`]) schedules the next attempt.
//!
//! A paused or cancelled subscription whose attempt was already in flight keeps its state: a
//! success still pays the period (the money was taken), a failure only counts.

/// Days after the first failure of a period at which the retries are made.
pub const RETRY_DAYS: [i64; 4] = [1, 3, 7, 14];

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// A subscription's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Billed every period.
    Active,
    /// The current period is unpaid; dunning retries (or a card update) pending.
    PastDue,
    /// Not billed until resumed.
    Paused,
    /// Ended for good.
    Cancelled,
}

impl State {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::PastDue => "PAST_DUE",
            Self::Paused => "PAUSED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Active, Self::PastDue, Self::Paused, Self::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// The outcome of one billing attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The PG charged the period.
    Success,
    /// The PG was not reached or failed before charging: retried on the schedule.
    SystemFailure,
    /// The PG declined the card (limit, invalid card): never retried as is.
    BusinessDecline,
}

impl Outcome {
    /// The stored and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::SystemFailure => "SYSTEM_FAILURE",
            Self::BusinessDecline => "BUSINESS_DECLINE",
        }
    }
}

/// The billing fields of a subscription the schedule reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Its state.
    pub state: State,
    /// The period being billed (1 = the first).
    pub period: i64,
    /// The billing date of `period` (ms since the epoch).
    pub billing_at: i64,
    /// When the next attempt is due; `None`: none scheduled (paused, cancelled, or waiting
    /// for a card update).
    pub next_attempt_at: Option<i64>,
    /// Failed attempts in this period (system failures and declines).
    pub failures: i64,
    /// The first failure of this period.
    pub first_failure_at: Option<i64>,
    /// The plan's period length (ms).
    pub period_ms: i64,
}

/// Something the decision tells the world (an outbox event and a metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A period was paid on time (no failure before in this period).
    Renewed,
    /// A period was paid after failures: a dunning recovery.
    Recovered,
    /// The subscription became past due (first failure of the period).
    BecamePastDue,
    /// The card was declined: nothing more until the card is updated.
    CardDeclined,
    /// The retries are exhausted: cancelled.
    CancelledForNonPayment,
}

impl Event {
    /// The outbox event type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Renewed => "SubscriptionRenewed",
            Self::Recovered => "SubscriptionRecovered",
            Self::BecamePastDue => "SubscriptionPastDue",
            Self::CardDeclined => "SubscriptionCardDeclined",
            Self::CancelledForNonPayment => "SubscriptionCancelled",
        }
    }
}

/// What a subscription becomes after an attempt's outcome, and what to announce.
pub fn decide(current: Schedule, outcome: Outcome, now: i64) -> (Schedule, Vec<Event>) {
    let live = matches!(current.state, State::Active | State::PastDue);
    match outcome {
        Outcome::Success => {
            let billing_at = current.billing_at.saturating_add(current.period_ms);
            let next = Schedule {
                state: if live { State::Active } else { current.state },
                period: current.period + 1,
                billing_at,
                next_attempt_at: live.then_some(billing_at),
                failures: 0,
                first_failure_at: None,
                period_ms: current.period_ms,
            };
            let event = if current.failures > 0 {
                Event::Recovered
            } else {
                Event::Renewed
            };
            (next, vec![event])
        }
        Outcome::SystemFailure | Outcome::BusinessDecline => {
            let first = current.first_failure_at.unwrap_or(now);
            let failures = current.failures + 1;
            let mut next = Schedule {
                failures,
                first_failure_at: Some(first),
                ..current
            };
            if !live {
                next.next_attempt_at = None;
                return (next, Vec::new());
            }
            let mut events = Vec::new();
            if current.state == State::Active {
                events.push(Event::BecamePastDue);
            }
            next.state = State::PastDue;
            if outcome == Outcome::BusinessDecline {
                next.next_attempt_at = None;
                events.push(Event::CardDeclined);
                return (next, events);
            }
            // Failures of this period so far, declines included, pick the retry.
            match usize::try_from(failures - 1)
                .ok()
                .and_then(|i| RETRY_DAYS.get(i))
            {
                Some(days) => next.next_attempt_at = Some(first + days * DAY_MS),
                None => {
                    next.state = State::Cancelled;
                    next.next_attempt_at = None;
                    events.push(Event::CancelledForNonPayment);
                }
            }
            (next, events)
        }
    }
}

/// After a card update: a past-due subscription is retried at once (the new card may pay);
/// any other keeps its schedule.
pub fn card_updated(current: Schedule, now: i64) -> Schedule {
    match current.state {
        State::PastDue => Schedule {
            next_attempt_at: Some(now),
            ..current
        },
        _ => current,
    }
}

/// Pausing: an active or past-due subscription stops being billed; `None` when it cannot be
/// paused (already paused or cancelled).
pub fn pause(current: Schedule) -> Option<Schedule> {
    matches!(current.state, State::Active | State::PastDue).then_some(Schedule {
        state: State::Paused,
        next_attempt_at: None,
        ..current
    })
}

/// Resuming a paused subscription: active again (past due when the period has failures),
/// billed at its billing date or now, whichever is later; `None` unless paused.
pub fn resume(current: Schedule, now: i64) -> Option<Schedule> {
    (current.state == State::Paused).then(|| {
        let state = if current.failures > 0 {
            State::PastDue
        } else {
            State::Active
        };
        Schedule {
            state,
            next_attempt_at: Some(current.billing_at.max(now)),
            ..current
        }
    })
}

/// Cancelling: `None` when already cancelled.
pub fn cancel(current: Schedule) -> Option<Schedule> {
    (current.state != State::Cancelled).then_some(Schedule {
        state: State::Cancelled,
        next_attempt_at: None,
        ..current
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: i64 = 30 * DAY_MS;

    fn active(billing_at: i64) -> Schedule {
        Schedule {
            state: State::Active,
            period: 2,
            billing_at,
            next_attempt_at: Some(billing_at),
            failures: 0,
            first_failure_at: None,
            period_ms: PERIOD,
        }
    }

    #[test]
    fn a_system_failure_on_day_0_retries_on_days_1_3_7_14_then_cancels() {
        let day0 = 100 * DAY_MS;
        let mut s = active(day0);
        let mut attempts = Vec::new();
        let mut all_events = Vec::new();
        while let Some(at) = s.next_attempt_at {
            attempts.push((at - day0) / DAY_MS);
            let (next, events) = decide(s, Outcome::SystemFailure, at);
            all_events.extend(events);
            s = next;
        }
        assert_eq!(attempts, [0, 1, 3, 7, 14]);
        assert_eq!(s.state, State::Cancelled);
        assert_eq!(s.failures, 5);
        assert_eq!(s.first_failure_at, Some(day0));
        assert_eq!(
            all_events,
            [Event::BecamePastDue, Event::CancelledForNonPayment]
        );
    }

    #[test]
    fn retries_count_from_the_first_failure_even_when_an_attempt_runs_late() {
        let day0 = 10 * DAY_MS;
        let (s, _) = decide(active(day0), Outcome::SystemFailure, day0);
        // The day-1 retry ran half a day late: the next is still day 3.
        let (s, _) = decide(s, Outcome::SystemFailure, day0 + DAY_MS + DAY_MS / 2);
        assert_eq!(s.next_attempt_at, Some(day0 + 3 * DAY_MS));
    }

    #[test]
    fn a_success_makes_the_subscription_active_for_the_next_period() {
        let (s, events) = decide(active(0), Outcome::Success, 5);
        assert_eq!(s.state, State::Active);
        assert_eq!(s.period, 3);
        assert_eq!(s.billing_at, PERIOD);
        assert_eq!(s.next_attempt_at, Some(PERIOD));
        assert_eq!(events, [Event::Renewed]);
    }

    #[test]
    fn a_success_after_failures_is_a_recovery_and_keeps_the_calendar() {
        let (s, _) = decide(active(0), Outcome::SystemFailure, 0);
        let (s, _) = decide(s, Outcome::SystemFailure, DAY_MS);
        let (s, events) = decide(s, Outcome::Success, 3 * DAY_MS);
        assert_eq!(events, [Event::Recovered]);
        assert_eq!(s.state, State::Active);
        assert_eq!(s.failures, 0);
        assert_eq!(s.first_failure_at, None);
        assert_eq!(s.next_attempt_at, Some(PERIOD));
    }

    #[test]
    fn a_business_decline_is_past_due_with_no_retry() {
        let (s, events) = decide(active(0), Outcome::BusinessDecline, 0);
        assert_eq!(s.state, State::PastDue);
        assert_eq!(s.next_attempt_at, None);
        assert_eq!(events, [Event::BecamePastDue, Event::CardDeclined]);
    }

    #[test]
    fn a_card_update_retries_a_past_due_subscription_at_once_and_nothing_else() {
        let (declined, _) = decide(active(0), Outcome::BusinessDecline, 0);
        assert_eq!(card_updated(declined, 42).next_attempt_at, Some(42));
        assert_eq!(card_updated(active(7), 42), active(7));
        let paused = pause(active(7)).unwrap();
        assert_eq!(card_updated(paused, 42), paused);
    }

    #[test]
    fn a_decline_during_dunning_stops_the_retries_and_counts_as_a_failure() {
        let (s, _) = decide(active(0), Outcome::SystemFailure, 0);
        let (s, events) = decide(s, Outcome::BusinessDecline, DAY_MS);
        assert_eq!(s.next_attempt_at, None);
        assert_eq!(s.failures, 2);
        assert_eq!(events, [Event::CardDeclined]);
        // After a card update, the next system failure takes the third retry (day 7).
        let s = card_updated(s, 2 * DAY_MS);
        let (s, _) = decide(s, Outcome::SystemFailure, 2 * DAY_MS);
        assert_eq!(s.next_attempt_at, Some(7 * DAY_MS));
    }

    #[test]
    fn an_attempt_that_lands_after_a_pause_or_cancel_keeps_that_state() {
        for stopped in [pause(active(0)).unwrap(), cancel(active(0)).unwrap()] {
            let (paid, events) = decide(stopped, Outcome::Success, 1);
            assert_eq!(paid.state, stopped.state);
            assert_eq!(paid.period, 3, "the money was taken: the period is paid");
            assert_eq!(paid.next_attempt_at, None);
            assert_eq!(events, [Event::Renewed]);
            for failure in [Outcome::SystemFailure, Outcome::BusinessDecline] {
                let (failed, events) = decide(stopped, failure, 1);
                assert_eq!(failed.state, stopped.state);
                assert_eq!(failed.next_attempt_at, None);
                assert!(events.is_empty());
            }
        }
    }

    #[test]
    fn pause_resume_and_cancel_follow_the_state_machine() {
        let a = active(50);
        let paused = pause(a).unwrap();
        assert_eq!(paused.state, State::Paused);
        assert_eq!(pause(paused), None);
        assert_eq!(resume(a, 0), None);
        let resumed = resume(paused, 10).unwrap();
        assert_eq!(
            (resumed.state, resumed.next_attempt_at),
            (State::Active, Some(50))
        );
        let late = resume(paused, 90).unwrap();
        assert_eq!(late.next_attempt_at, Some(90));
        let (past_due, _) = decide(a, Outcome::SystemFailure, 50);
        let resumed = resume(pause(past_due).unwrap(), 60).unwrap();
        assert_eq!(resumed.state, State::PastDue);
        let cancelled = cancel(paused).unwrap();
        assert_eq!(cancelled.state, State::Cancelled);
        assert_eq!(cancel(cancelled), None);
        assert_eq!(pause(cancelled), None);
        assert_eq!(resume(cancelled, 0), None);
    }

    #[test]
    fn every_state_and_outcome_gives_a_consistent_schedule() {
        for state in [
            State::Active,
            State::PastDue,
            State::Paused,
            State::Cancelled,
        ] {
            for failures in 0..=5 {
                for outcome in [
                    Outcome::Success,
                    Outcome::SystemFailure,
                    Outcome::BusinessDecline,
                ] {
                    let s = Schedule {
                        state,
                        failures,
                        first_failure_at: (failures > 0).then_some(0),
                        ..active(0)
                    };
                    let (next, _) = decide(s, outcome, DAY_MS);
                    // Only live subscriptions have an attempt scheduled.
                    let live = matches!(next.state, State::Active | State::PastDue);
                    assert!(live || next.next_attempt_at.is_none(), "{s:?} {outcome:?}");
                    // Active means nothing is owed for the period.
                    if next.state == State::Active {
                        assert_eq!((next.failures, next.first_failure_at), (0, None));
                    }
                    if next.state == State::PastDue {
                        assert!(next.failures > 0 && next.first_failure_at.is_some());
                    }
                    assert_eq!(
                        next.period,
                        s.period + i64::from(outcome == Outcome::Success)
                    );
                    for st in [
                        State::Active,
                        State::PastDue,
                        State::Paused,
                        State::Cancelled,
                    ] {
                        assert_eq!(State::parse(st.as_str()), Some(st));
                    }
                }
            }
        }
    }
}
