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
