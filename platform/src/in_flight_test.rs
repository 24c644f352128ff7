use super::*;

fn in_flight(total: usize, per_caller: usize) -> InFlight {
    InFlight::new(&HttpConfig {
        max_concurrent_requests: total,
        max_in_flight_per_caller: per_caller,
        max_in_flight_per_user: 1,
        ..HttpConfig::default()
    })
}

fn code(refused: Result<Ticket, Problem>) -> String {
    match refused {
        Ok(_) => "admitted".into(),
        Err(p) => format!("{} {}", p.status, p.code),
    }
}

#[test]
fn a_caller_past_its_own_bound_is_refused_429_and_others_are_not() {
    let places = in_flight(10, 2);
    let first = places.enter("shop:a".into(), 2).unwrap();
    let _second = places.enter("shop:a".into(), 2).unwrap();
    assert_eq!(
        code(places.enter("shop:a".into(), 2)),
        "429 too_many_in_flight"
    );
    let _other = places.enter("shop:b".into(), 2).unwrap();
    drop(first);
    assert_eq!(code(places.enter("shop:a".into(), 2)), "admitted");
}

#[test]
fn past_the_listeners_bound_every_caller_is_refused_503_until_a_place_frees() {
    let places = in_flight(2, 5);
    let a = places.enter("shop:a".into(), 5).unwrap();
    let _b = places.enter("shop:b".into(), 5).unwrap();
    assert_eq!(code(places.enter("shop:c".into(), 5)), "503 overloaded");
    drop(a);
    assert_eq!(code(places.enter("shop:c".into(), 5)), "admitted");
}

#[test]
fn a_refused_request_takes_no_place_and_finished_callers_are_forgotten() {
    let places = in_flight(3, 1);
    let held = places.enter("user:x".into(), 1).unwrap();
    for _ in 0..5 {
        assert_eq!(
            code(places.enter("user:x".into(), 1)),
            "429 too_many_in_flight"
        );
    }
    // The refusals above gave their places back: two more callers fit.
    let b = places.enter("shop:b".into(), 1).unwrap();
    let c = places.enter("shop:c".into(), 1).unwrap();
    assert_eq!(places.callers(), 3);
    drop((held, b, c));
    assert_eq!(places.callers(), 0);
}
