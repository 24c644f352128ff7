use super::*;

#[test]
fn ancestors_follow_referrers_and_moves_refuse_cycles() {
    let (a, b, c) = (UserId::new(), UserId::new(), UserId::new());
    let mut g = ReferralGraph::default();
    g.apply(&UserChange::Created {
        user: a,
        referrer: None,
    })
    .unwrap();
    g.apply(&UserChange::Created {
        user: b,
        referrer: Some(a),
    })
    .unwrap();
    g.apply(&UserChange::Created {
        user: c,
        referrer: Some(b),
    })
    .unwrap();
    let anc: Vec<_> = g.ancestors(c, 5).iter().map(|x| x.user_id).collect();
    assert_eq!(anc, vec![b, a]);
    assert_eq!(
        g.apply(&UserChange::Moved {
            user: a,
            referrer: Some(c)
        }),
        Err(GraphError::Cycle(a, c))
    );
    g.apply(&UserChange::Moved {
        user: c,
        referrer: Some(a),
    })
    .unwrap();
    assert_eq!(g.referrer(c), Some(a));
    g.apply(&UserChange::Status {
        user: a,
        active: false,
    })
    .unwrap();
    assert_eq!(
        g.ancestors(c, 5),
        vec![Ancestor {
            user_id: a,
            active: false
        }]
    );
}

#[test]
fn stored_ancestors_round_trip_and_malformed_bytes_are_refused() {
    let a = |active| Ancestor {
        user_id: UserId::new(),
        active,
    };
    let ancestors = vec![a(true), a(false), a(true)];
    let bytes = Ancestor::encode_all(&ancestors);
    assert_eq!(bytes.len(), 51);
    assert_eq!(Ancestor::decode_all(&bytes).unwrap(), ancestors);
    assert_eq!(Ancestor::decode_all(&[]).unwrap(), vec![]);
    assert!(
        Ancestor::decode_all(&bytes[..50]).is_err(),
        "a partial record"
    );
    let mut flag = bytes.clone();
    flag[16] = 2;
    assert!(
        Ancestor::decode_all(&flag).is_err(),
        "a flag other than 0 or 1"
    );
}

fn row(user: UserId, referrer: Option<UserId>, active: bool) -> UserRow {
    UserRow {
        user,
        referrer,
        active,
    }
}

#[test]
fn a_snapshot_in_any_order_builds_the_graph_its_events_build() {
    let (a, b, c, d) = (UserId::new(), UserId::new(), UserId::new(), UserId::new());
    // Events: a, b under a, c under b, d under a; then a moves under d, c is deactivated.
    let mut replayed = ReferralGraph::default();
    for (user, referrer) in [(a, None), (b, Some(a)), (c, Some(b)), (d, None)] {
        replayed
            .apply(&UserChange::Created { user, referrer })
            .unwrap();
    }
    replayed
        .apply(&UserChange::Moved {
            user: a,
            referrer: Some(d),
        })
        .unwrap();
    replayed
        .apply(&UserChange::Status {
            user: c,
            active: false,
        })
        .unwrap();
    // The table after them, children before their referrers (a before d).
    let mut s = Snapshot::new(6, 0);
    for r in [
        row(c, Some(b), false),
        row(a, Some(d), true),
        row(b, Some(a), true),
        row(d, None, true),
    ] {
        s.add(r).unwrap();
    }
    let g = s.finish().unwrap();
    assert_eq!((g.seq, g.len()), (6, 4));
    for u in [a, b, c, d] {
        assert_eq!(g.referrer(u), replayed.referrer(u), "referrer of {u}");
        assert_eq!(g.is_active(u), replayed.is_active(u), "status of {u}");
    }
    let up: Vec<_> = g.ancestors(c, 9).iter().map(|x| x.user_id).collect();
    assert_eq!(up, vec![b, a, d]);
}

#[test]
fn a_broken_snapshot_is_refused() {
    let (a, b, ghost) = (UserId::new(), UserId::new(), UserId::new());
    let mut s = Snapshot::new(1, 0);
    s.add(row(a, Some(ghost), true)).unwrap();
    assert_eq!(s.finish().err(), Some(GraphError::UnknownUser(ghost)));

    let mut s = Snapshot::new(1, 0);
    s.add(row(a, Some(b), true)).unwrap();
    s.add(row(b, Some(a), true)).unwrap();
    assert!(matches!(s.finish().err(), Some(GraphError::Cycle(..))));

    let mut s = Snapshot::new(1, 0);
    s.add(row(a, None, true)).unwrap();
    assert_eq!(s.add(row(a, None, false)), Err(GraphError::Duplicate(a)));
}

/// The cycle check follows referrer chains: a loop anywhere (not only through the first
/// users added) is found, a long chain into a shared ancestor is not one, and a self-loop is.
#[test]
fn the_snapshot_finds_a_loop_anywhere_and_only_a_loop() {
    let users: Vec<UserId> = (0..50).map(|_| UserId::new()).collect();
    let mut s = Snapshot::new(1, 0);
    s.add(row(users[0], None, true)).unwrap();
    for w in users.windows(2) {
        s.add(row(w[1], Some(w[0]), true)).unwrap();
    }
    // A second chain joining the first halfway: no cycle.
    let (x, y) = (UserId::new(), UserId::new());
    s.add(row(x, Some(users[25]), true)).unwrap();
    s.add(row(y, Some(x), true)).unwrap();
    assert!(s.finish().is_ok());

    // Three users referring round, hanging off nothing, after a long healthy chain.
    let mut s = Snapshot::new(1, 0);
    s.add(row(users[0], None, true)).unwrap();
    for w in users.windows(2) {
        s.add(row(w[1], Some(w[0]), true)).unwrap();
    }
    let (p, q, r) = (UserId::new(), UserId::new(), UserId::new());
    s.add(row(p, Some(r), true)).unwrap();
    s.add(row(q, Some(p), true)).unwrap();
    s.add(row(r, Some(q), true)).unwrap();
    match s.finish().err() {
        Some(GraphError::Cycle(user, _)) => assert!([p, q, r].contains(&user)),
        other => panic!("expected a cycle, got {other:?}"),
    }

    let mut s = Snapshot::new(1, 0);
    s.add(row(x, Some(x), true)).unwrap();
    assert!(matches!(s.finish().err(), Some(GraphError::Cycle(..))));
}
