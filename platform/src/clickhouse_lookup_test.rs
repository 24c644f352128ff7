use super::*;

fn key(at: i64, n: u128) -> Key {
    Key {
        at,
        id: Uuid::from_u128(n),
    }
}

const KEYS: KeyTable = KeyTable {
    table: "earning_event_keys",
    time: "created_at",
    id: "event_id",
};

#[test]
fn a_batch_of_one_second_is_one_lookup_in_time_order() {
    let keys = [key(100, 3), key(100, 1), key(99, 2)];
    assert_eq!(
        lookups(&keys),
        vec![vec![key(99, 2), key(100, 1), key(100, 3)]]
    );
}

#[test]
fn an_old_row_among_new_ones_gets_a_lookup_of_its_own() {
    let now = 1_800_000_000;
    let old = now - 2 * LOOKUP_SPAN_SECS;
    let keys = [key(now, 1), key(old, 2), key(now - 5, 3)];
    assert_eq!(
        lookups(&keys),
        vec![vec![key(old, 2)], vec![key(now - 5, 3), key(now, 1)]]
    );
    // At the span exactly, one lookup still covers both.
    let keys = [key(now, 1), key(now - LOOKUP_SPAN_SECS, 2)];
    assert_eq!(lookups(&keys).len(), 1);
}

#[test]
fn a_lookup_holds_at_most_its_bound_of_ids() {
    let keys: Vec<Key> = (0..IDS_PER_LOOKUP as u128 * 2 + 1)
        .map(|n| key(7, n))
        .collect();
    let sizes: Vec<usize> = lookups(&keys).iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![IDS_PER_LOOKUP, IDS_PER_LOOKUP, 1]);
    assert!(lookups(&[]).is_empty());
}

#[test]
fn the_lookup_is_bounded_by_its_first_and_last_second() {
    let sql = lookup_sql("db.earning_event_keys", KEYS, &[key(10, 1), key(12, 2)]);
    assert_eq!(
        sql,
        "SELECT toString(event_id) FROM db.earning_event_keys \
         WHERE created_at >= toDateTime(10) AND created_at <= toDateTime(12) \
         AND event_id IN asked_ids FORMAT TabSeparated"
    );
}
