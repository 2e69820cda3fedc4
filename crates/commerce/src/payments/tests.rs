//! The pure transition table and the order's derived status.

use super::*;
use PaymentStatus as S;

fn pg(status: PgStatus) -> Observation {
    Observation::Pg {
        transaction_key: "k".into(),
        status,
        reason: None,
    }
}

#[test]
fn terminal_states_never_regress_to_pending() {
    for terminal in [S::Success, S::Failed, S::Canceled, S::NeedsReview] {
        assert_eq!(decide(terminal, &pg(PgStatus::Pending)).to, None);
        assert_eq!(
            decide(
                terminal,
                &Observation::Accepted {
                    transaction_key: "k".into()
                }
            )
            .to,
            None
        );
    }
}

#[test]
fn a_late_contradiction_goes_to_review_with_an_alert() {
    assert_eq!(
        decide(S::Failed, &pg(PgStatus::Success)),
        Step::conflict(S::NeedsReview)
    );
    assert_eq!(
        decide(S::Success, &pg(PgStatus::Failed)),
        Step::conflict(S::NeedsReview)
    );
}

#[test]
fn duplicates_change_nothing() {
    assert_eq!(decide(S::Success, &pg(PgStatus::Success)), Step::NOTHING);
    assert_eq!(decide(S::Failed, &pg(PgStatus::Failed)), Step::NOTHING);
    assert_eq!(decide(S::Pending, &pg(PgStatus::Pending)), Step::NOTHING);
}

#[test]
fn the_request_path_moves_only_a_requested_payment() {
    let not_reached = Observation::NotReached { reason: "x".into() };
    assert_eq!(decide(S::Requested, &not_reached), Step::to(S::Failed));
    assert_eq!(decide(S::Success, &not_reached), Step::NOTHING);
    let uncertain = Observation::Uncertain { reason: "x".into() };
    assert_eq!(decide(S::Requested, &uncertain), Step::to(S::Unknown));
    assert_eq!(decide(S::Pending, &uncertain), Step::NOTHING);
}

#[test]
fn not_found_fails_only_payments_the_pg_never_acknowledged() {
    assert_eq!(
        decide(S::Unknown, &Observation::NotFoundAtPg),
        Step::to(S::Failed)
    );
    assert_eq!(
        decide(S::Pending, &Observation::NotFoundAtPg),
        Step::conflict(S::NeedsReview)
    );
}

#[test]
fn an_order_is_paid_if_any_attempt_succeeded() {
    assert_eq!(
        derive_order_status(OrderStatus::PaymentPending, &[S::Failed, S::Success]),
        Some(OrderStatus::Paid)
    );
    assert_eq!(
        derive_order_status(OrderStatus::PaymentPending, &[S::Failed, S::Pending]),
        None
    );
    assert_eq!(
        derive_order_status(OrderStatus::PaymentPending, &[S::Failed]),
        Some(OrderStatus::Failed)
    );
    assert_eq!(
        derive_order_status(OrderStatus::PaymentPending, &[S::NeedsReview]),
        Some(OrderStatus::NeedsReview)
    );
}

#[test]
fn final_orders_never_change() {
    assert_eq!(
        derive_order_status(OrderStatus::Paid, &[S::NeedsReview]),
        None
    );
    assert_eq!(
        derive_order_status(OrderStatus::Failed, &[S::Success]),
        None
    );
}
