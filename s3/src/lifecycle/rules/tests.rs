//! Tests of the lifecycle rules: checks of a PUT, the round trip to a GET, filters
//! and the arithmetic of deadlines.

use super::*;

const DAY: u64 = 86_400;

fn rule(id: &str) -> LifecycleRule {
    LifecycleRule {
        abort_incomplete_multipart_upload: None,
        expiration: Some(LifecycleExpiration {
            days: Some(30),
            ..LifecycleExpiration::default()
        }),
        filter: Some(LifecycleRuleFilter {
            prefix: Some("logs/".into()),
            ..LifecycleRuleFilter::default()
        }),
        id: Some(id.into()),
        noncurrent_version_expiration: None,
        noncurrent_version_transitions: None,
        prefix: None,
        status: ExpirationStatus::from_static(ExpirationStatus::ENABLED),
        transitions: None,
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        key: Some(k.into()),
        value: Some(v.into()),
    }
}

fn parse(rules: Vec<LifecycleRule>) -> GatewayResult<Config> {
    Config::from_dto(BucketLifecycleConfiguration { rules })
}

fn code(rules: Vec<LifecycleRule>) -> &'static str {
    match parse(rules) {
        Ok(_) => "ok",
        Err(GatewayError::MalformedXml(_)) => "MalformedXML",
        Err(GatewayError::InvalidArgument(_)) => "InvalidArgument",
        Err(GatewayError::InvalidTag(_)) => "InvalidTag",
        Err(GatewayError::NotImplemented(_)) => "NotImplemented",
        Err(e) => panic!("unexpected {e:?}"),
    }
}

fn with(f: impl FnOnce(&mut LifecycleRule)) -> Vec<LifecycleRule> {
    let mut r = rule("r");
    f(&mut r);
    vec![r]
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from(time::OffsetDateTime::from_unix_timestamp(secs).unwrap())
}

#[test]
fn rule_counts_ids_and_status() {
    assert_eq!(code(vec![]), "MalformedXML");
    assert_eq!(code(vec![rule("a"); MAX_RULES + 1]), "MalformedXML");
    assert_eq!(code(vec![rule("a"), rule("b")]), "ok");
    assert_eq!(code(vec![rule("a"), rule("a")]), "InvalidArgument");
    assert_eq!(code(vec![rule(&"x".repeat(256))]), "InvalidArgument");
    assert_eq!(code(vec![rule(&"x".repeat(255))]), "ok");
    assert_eq!(
        code(with(
            |r| r.status = ExpirationStatus::from("Sometimes".to_string())
        )),
        "MalformedXML"
    );
    let c = parse(with(|r| {
        r.status = ExpirationStatus::from_static("Disabled")
    }))
    .unwrap();
    assert!(!c.rules[0].enabled);
    // Rules without an id get distinct generated ones, like S3's.
    let c = parse(vec![rule(""), rule("b"), {
        let mut r = rule("");
        r.id = None;
        r
    }])
    .unwrap();
    let ids: HashSet<_> = c.rules.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(c.rules[1].id, "b");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&c.rules[0].id)
        .unwrap();
    assert_eq!(decoded.len(), 36);
}

#[test]
fn filters_are_checked() {
    // Neither a Filter nor a Prefix, or both.
    assert_eq!(code(with(|r| r.filter = None)), "MalformedXML");
    assert_eq!(code(with(|r| r.prefix = Some("a".into()))), "MalformedXML");
    // The legacy Prefix alone is fine.
    assert_eq!(
        code(with(|r| {
            r.filter = None;
            r.prefix = Some("a".into());
        })),
        "ok"
    );
    // Two elements at the top of Filter.
    assert_eq!(
        code(with(
            |r| r.filter.as_mut().unwrap().tag = Some(tag("k", "v"))
        )),
        "MalformedXML"
    );
    assert_eq!(
        code(with(|r| {
            r.filter = Some(LifecycleRuleFilter {
                object_size_greater_than: Some(1),
                object_size_less_than: Some(10),
                ..LifecycleRuleFilter::default()
            });
        })),
        "MalformedXML"
    );
    let and = |a: LifecycleRuleAndOperator| {
        with(move |r| {
            r.filter = Some(LifecycleRuleFilter {
                and: Some(a),
                ..LifecycleRuleFilter::default()
            });
        })
    };
    let sizes = |g, l| LifecycleRuleAndOperator {
        object_size_greater_than: g,
        object_size_less_than: l,
        ..LifecycleRuleAndOperator::default()
    };
    assert_eq!(code(and(sizes(Some(1), Some(10)))), "ok");
    assert_eq!(code(and(sizes(Some(10), Some(10)))), "InvalidArgument");
    assert_eq!(code(and(sizes(Some(-1), None))), "InvalidArgument");
    assert_eq!(code(and(sizes(None, Some(0)))), "InvalidArgument");
    let tags = |t: Vec<Tag>| LifecycleRuleAndOperator {
        tags: Some(t),
        ..LifecycleRuleAndOperator::default()
    };
    assert_eq!(code(and(tags(vec![tag("a", "1"), tag("b", "2")]))), "ok");
    assert_eq!(
        code(and(tags(vec![tag("a", "1"), tag("a", "2")]))),
        "InvalidArgument"
    );
    assert_eq!(code(and(tags(vec![tag("", "1")]))), "InvalidTag");
    assert_eq!(
        code(and(tags(vec![Tag {
            key: None,
            value: Some("v".into())
        }]))),
        "MalformedXML"
    );
}

#[test]
fn actions_are_checked() {
    let exp = |e: LifecycleExpiration| with(move |r| r.expiration = Some(e));
    let days = |d| LifecycleExpiration {
        days: Some(d),
        ..LifecycleExpiration::default()
    };
    let date = |secs| LifecycleExpiration {
        date: Some(ts(secs)),
        ..LifecycleExpiration::default()
    };
    let marker = LifecycleExpiration {
        expired_object_delete_marker: Some(true),
        ..LifecycleExpiration::default()
    };
    assert_eq!(code(exp(days(0))), "InvalidArgument");
    assert_eq!(code(exp(days(-3))), "InvalidArgument");
    assert_eq!(code(exp(date(1_356_220_800))), "ok");
    assert_eq!(code(exp(date(1_356_220_800 + 3600))), "InvalidArgument");
    assert_eq!(code(exp(marker.clone())), "ok");
    let mut both = days(3);
    both.expired_object_delete_marker = Some(true);
    assert_eq!(code(exp(both)), "MalformedXML");
    let mut both = date(1_356_220_800);
    both.expired_object_delete_marker = Some(false);
    assert_eq!(code(exp(both)), "MalformedXML");
    assert_eq!(code(exp(LifecycleExpiration::default())), "MalformedXML");
    // No action at all (an ExpiredObjectDeleteMarker false is none).
    assert_eq!(code(with(|r| r.expiration = None)), "InvalidArgument");
    assert_eq!(
        code(exp(LifecycleExpiration {
            expired_object_delete_marker: Some(false),
            ..LifecycleExpiration::default()
        })),
        "InvalidArgument"
    );
    // Transitions.
    assert_eq!(
        code(with(|r| r.transitions = Some(vec![Default::default()]))),
        "NotImplemented"
    );
    assert_eq!(
        code(with(
            |r| r.noncurrent_version_transitions = Some(vec![Default::default()])
        )),
        "NotImplemented"
    );
    // Noncurrent versions.
    let nc = |d, n| {
        with(move |r| {
            r.noncurrent_version_expiration = Some(NoncurrentVersionExpiration {
                noncurrent_days: d,
                newer_noncurrent_versions: n,
            });
        })
    };
    assert_eq!(code(nc(Some(1), Some(2))), "ok");
    assert_eq!(code(nc(Some(0), None)), "InvalidArgument");
    assert_eq!(code(nc(None, Some(101))), "InvalidArgument");
    assert_eq!(code(nc(None, None)), "MalformedXML");
    // Aborting uploads: positive days, not with tags or sizes.
    let abort = |d, f: LifecycleRuleFilter| {
        with(move |r| {
            r.expiration = None;
            r.abort_incomplete_multipart_upload = Some(AbortIncompleteMultipartUpload {
                days_after_initiation: d,
            });
            r.filter = Some(f);
        })
    };
    assert_eq!(code(abort(Some(7), LifecycleRuleFilter::default())), "ok");
    assert_eq!(
        code(abort(Some(0), LifecycleRuleFilter::default())),
        "InvalidArgument"
    );
    assert_eq!(
        code(abort(None, LifecycleRuleFilter::default())),
        "MalformedXML"
    );
    let tagged = LifecycleRuleFilter {
        tag: Some(tag("k", "v")),
        ..LifecycleRuleFilter::default()
    };
    assert_eq!(code(abort(Some(7), tagged)), "InvalidArgument");
    let sized = LifecycleRuleFilter {
        object_size_less_than: Some(10),
        ..LifecycleRuleFilter::default()
    };
    assert_eq!(code(abort(Some(7), sized)), "InvalidArgument");
}

#[test]
fn a_get_gives_back_what_was_put() {
    let mut rules = vec![rule("prefix")];
    let mut r = rule("legacy");
    r.filter = None;
    r.prefix = Some("old/".into());
    rules.push(r);
    let mut r = rule("empty");
    r.filter = Some(LifecycleRuleFilter::default());
    r.expiration = Some(LifecycleExpiration {
        date: Some(ts(1_356_220_800)),
        ..LifecycleExpiration::default()
    });
    r.abort_incomplete_multipart_upload = Some(AbortIncompleteMultipartUpload {
        days_after_initiation: Some(3),
    });
    rules.push(r);
    let mut r = rule("and");
    r.filter = Some(LifecycleRuleFilter {
        and: Some(LifecycleRuleAndOperator {
            prefix: Some("p/".into()),
            tags: Some(vec![tag("a", "1")]),
            object_size_greater_than: Some(5),
            object_size_less_than: Some(500),
        }),
        ..LifecycleRuleFilter::default()
    });
    r.noncurrent_version_expiration = Some(NoncurrentVersionExpiration {
        noncurrent_days: Some(4),
        newer_noncurrent_versions: Some(2),
    });
    r.status = ExpirationStatus::from_static(ExpirationStatus::DISABLED);
    rules.push(r);
    let mut r = rule("tag");
    r.filter = Some(LifecycleRuleFilter {
        tag: Some(tag("k", "v")),
        ..LifecycleRuleFilter::default()
    });
    r.expiration = Some(LifecycleExpiration {
        expired_object_delete_marker: Some(true),
        ..LifecycleExpiration::default()
    });
    rules.push(r);
    let mut r = rule("empty-prefix");
    r.filter = Some(LifecycleRuleFilter {
        prefix: Some(String::new()),
        ..LifecycleRuleFilter::default()
    });
    rules.push(r);
    let c = parse(rules.clone()).unwrap();
    assert_eq!(c.to_dto(), rules);
    // And through the stored JSON.
    let json = serde_json::to_vec(&c).unwrap();
    let back: Config = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.to_dto(), rules);
}

#[test]
fn filters_match_prefix_tags_and_sizes() {
    let t = |k: &str, v: &str| (k.to_string(), v.to_string());
    let f = Filter {
        prefix: "logs/".into(),
        ..Filter::default()
    };
    assert!(f.matches("logs/a", 0, &[]));
    assert!(!f.matches("log/a", 0, &[]));
    assert!(Filter::default().matches("anything", 7, &[]));
    let f = Filter {
        tags: vec![t("a", "1"), t("b", "2")],
        ..Filter::default()
    };
    assert!(f.matches("k", 0, &[t("b", "2"), t("c", "3"), t("a", "1")]));
    assert!(!f.matches("k", 0, &[t("a", "1")]));
    assert!(!f.matches("k", 0, &[t("a", "1"), t("b", "3")]));
    let f = Filter {
        prefix: "p/".into(),
        tags: vec![t("a", "1")],
        size_greater_than: Some(10),
        size_less_than: Some(20),
        form: Form::And,
    };
    assert!(f.matches("p/x", 15, &[t("a", "1")]));
    assert!(!f.matches("p/x", 10, &[t("a", "1")]));
    assert!(!f.matches("p/x", 20, &[t("a", "1")]));
    assert!(!f.matches("q/x", 15, &[t("a", "1")]));
    assert!(!f.matches("p/x", 15, &[]));
}

#[test]
fn expiry_rounds_up_to_a_day_boundary() {
    // S3's example: written 2014-01-15 10:30 UTC, 3 days: 2014-01-19 00:00 UTC.
    assert_eq!(expiry_after(1_389_781_800, 3, DAY), 1_390_089_600);
    // Already on a boundary: that boundary.
    assert_eq!(expiry_after(1_390_003_200, 1, DAY), 1_390_089_600);
    // Five-second days.
    assert_eq!(expiry_after(12, 1, 5), 20);
    assert_eq!(expiry_after(10, 2, 5), 20);
    assert_eq!(expiry_after(11, 2, 5), 25);
    assert_eq!(expiry_after(-3, 1, 5), 5);
    assert_eq!(expiry_after(7, 1, 0), 8);
}

#[test]
fn current_expiry_is_the_earliest_matching_enabled_rule() {
    let mut rules = vec![rule("thirty"), rule("ten"), rule("other"), rule("off")];
    rules[1].expiration.as_mut().unwrap().days = Some(10);
    rules[2].expiration.as_mut().unwrap().days = Some(1);
    rules[2].filter = Some(LifecycleRuleFilter {
        prefix: Some("elsewhere/".into()),
        ..LifecycleRuleFilter::default()
    });
    rules[3].expiration.as_mut().unwrap().days = Some(1);
    rules[3].status = ExpirationStatus::from_static(ExpirationStatus::DISABLED);
    let c = parse(rules).unwrap();
    assert_eq!(
        c.current_expiry("logs/a", 1, &[], 12, 5),
        Some((65, "ten".to_string()))
    );
    assert_eq!(c.current_expiry("nope", 1, &[], 12, 5), None);
    let r = &c.rules[1];
    assert!(!r.current_due(12, 64, 5));
    assert!(r.current_due(12, 65, 5));
    assert!(!c.rules[3].current_due(12, 1000, 5));
    let mut d = c.rules[0].clone();
    d.expiration = Some(Expiration::Date(1_356_220_800));
    assert_eq!(d.current_expiry(5, DAY), Some(1_356_220_800));
    assert!(d.current_due(0, 1_356_220_800, DAY));
    assert!(!d.current_due(0, 1_356_220_799, DAY));
    d.expiration = Some(Expiration::ExpiredObjectDeleteMarker);
    assert!(!d.current_due(0, i64::MAX, DAY));
}

#[test]
fn the_expiration_header() {
    assert_eq!(
        expiration_header(1_356_220_800, "picture-deletion"),
        r#"expiry-date="Sun, 23 Dec 2012 00:00:00 GMT", rule-id="picture-deletion""#
    );
    assert_eq!(
        expiration_header(0, "a\"b"),
        r#"expiry-date="Thu, 01 Jan 1970 00:00:00 GMT", rule-id="ab""#
    );
}

#[test]
fn noncurrent_versions_and_uploads_fall_due() {
    let base = Rule {
        id: "r".into(),
        enabled: true,
        filter: Filter::default(),
        expiration: None,
        noncurrent: None,
        abort_incomplete_days: None,
    };
    let nc = |days, newer| Rule {
        noncurrent: Some(Noncurrent {
            days,
            newer_noncurrent_versions: newer,
        }),
        ..base.clone()
    };
    // Days alone: 2 five-second days after 11 is 25.
    let r = nc(Some(2), None);
    assert!(!r.noncurrent_due(11, 0, 24, 5));
    assert!(r.noncurrent_due(11, 0, 25, 5));
    // Newer versions alone: keep the 2 newest noncurrent versions.
    let r = nc(None, Some(2));
    assert!(!r.noncurrent_due(11, 0, 11, 5));
    assert!(!r.noncurrent_due(11, 1, 11, 5));
    assert!(r.noncurrent_due(11, 2, 11, 5));
    // Both must hold.
    let r = nc(Some(2), Some(2));
    assert!(!r.noncurrent_due(11, 5, 24, 5));
    assert!(!r.noncurrent_due(11, 1, 25, 5));
    assert!(r.noncurrent_due(11, 2, 25, 5));
    let mut off = r.clone();
    off.enabled = false;
    assert!(!off.noncurrent_due(11, 9, 1000, 5));
    assert!(!base.noncurrent_due(11, 9, 1000, 5));
    // Uploads.
    let r = Rule {
        abort_incomplete_days: Some(1),
        ..base.clone()
    };
    assert!(!r.abort_due(1_389_781_800, 1_389_916_799, DAY));
    assert!(r.abort_due(1_389_781_800, 1_389_916_800, DAY));
    assert!(!base.abort_due(0, i64::MAX, DAY));
}
