//! The eviction decision as a pure function of the evictable keys' last-use times.

/// What one eviction pass removes: up to `count` evictable keys last used at or before
/// `cutoff` (nanoseconds on the keyed instances' clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) cutoff: u64,
    pub(crate) count: usize,
}

/// How many keys a pass at the bound frees: an eighth of the bound (at least one), so the
/// scan a pass costs is paid once per `max_keys / 8` new keys, not once per key.
pub(crate) fn batch(max_keys: usize) -> usize {
    (max_keys / 8).max(1)
}

/// Chooses what to evict.
///
/// - `touched`: the last-use time of every evictable key (reordered in place);
/// - `idle_before`: keys last used at or before this are idle (None: no idle eviction);
/// - `excess`: how many keys must go to make room (0 when below the bound).
///
/// The least recently used keys go first: every idle key, and at least `excess` keys in all.
/// None when nothing is to be evicted.
pub(crate) fn plan(touched: &mut [u64], idle_before: Option<u64>, excess: usize) -> Option<Plan> {
    let idle = idle_before.map_or(0, |before| touched.iter().filter(|&&t| t <= before).count());
    let count = idle.max(excess).min(touched.len());
    if count == 0 {
        return None;
    }
    let (_, &mut cutoff, _) = touched.select_nth_unstable(count - 1);
    Some(Plan { cutoff, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_evicted_below_the_bound_without_idle_keys() {
        assert_eq!(plan(&mut [5, 6, 7], Some(4), 0), None);
        assert_eq!(plan(&mut [5, 6, 7], None, 0), None);
    }

    #[test]
    fn every_idle_key_is_evicted() {
        assert_eq!(
            plan(&mut [9, 1, 3, 7], Some(3), 0),
            Some(Plan {
                cutoff: 3,
                count: 2
            })
        );
    }

    #[test]
    fn the_least_recently_used_keys_make_room() {
        assert_eq!(
            plan(&mut [9, 1, 3, 7], None, 3),
            Some(Plan {
                cutoff: 7,
                count: 3
            })
        );
    }

    #[test]
    fn making_room_never_evicts_more_keys_than_are_evictable() {
        assert_eq!(
            plan(&mut [4, 2], None, 5),
            Some(Plan {
                cutoff: 4,
                count: 2
            })
        );
        assert_eq!(plan(&mut [], Some(10), 5), None);
    }

    #[test]
    fn a_batch_is_an_eighth_of_the_bound_and_at_least_one() {
        assert_eq!(batch(10_000), 1_250);
        assert_eq!(batch(3), 1);
    }
}
