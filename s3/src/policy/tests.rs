//! Policy tests: parsing and its refusals, principals, actions and resources with
//! wildcards, every condition operator (with IfExists, Null and the set qualifiers),
//! and an explicit Deny beating any Allow.

use super::*;

const B: &str = "arn:aws:s3:::b";

fn user(account: &str, name: &str) -> Principal {
    Principal::User {
        account: account.into(),
        name: name.into(),
    }
}

fn policy(statements: &str) -> Policy {
    Policy::parse(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
        "b",
    )
    .unwrap()
}

/// An Allow of s3:GetObject on b/* for everyone under one condition.
fn cond(op: &str, body: &str) -> Policy {
    policy(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"{B}/*",
            "Condition":{{"{op}":{body}}}}}"#
    ))
}

fn ctx(pairs: &[(&str, &str)]) -> Context {
    let mut c = Context::default();
    for (k, v) in pairs {
        c.set(k, *v);
    }
    c
}

fn allows(p: &Policy, c: &Context) -> bool {
    p.evaluate(&Principal::Anonymous, "s3:GetObject", &format!("{B}/k"), c) == Decision::Allow
}

#[test]
fn principals_actions_and_resources() {
    let p = policy(&format!(
        r#"{{"Sid":"a","Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::111:root","arn:aws:iam::222:user/bob","333"]}},
            "Action":["s3:Get*","s3:ListBucket"],"Resource":["{B}","{B}/public/*"]}}"#
    ));
    let get =
        |who: &Principal, res: &str| p.evaluate(who, "s3:GetObject", res, &Context::default());
    let public = format!("{B}/public/x");
    assert_eq!(get(&user("111", "anyone"), &public), Decision::Allow);
    assert_eq!(get(&user("222", "bob"), &public), Decision::Allow);
    assert_eq!(get(&user("222", "alice"), &public), Decision::Silent);
    assert_eq!(get(&user("333", "x"), &public), Decision::Allow);
    assert_eq!(get(&Principal::Anonymous, &public), Decision::Silent);
    assert_eq!(
        get(&user("111", "a"), &format!("{B}/private/x")),
        Decision::Silent
    );
    // Actions match case-insensitively, with wildcards.
    assert_eq!(
        p.evaluate(
            &user("111", "a"),
            "s3:GETOBJECTTAGGING",
            &public,
            &Context::default()
        ),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(
            &user("111", "a"),
            "s3:PutObject",
            &public,
            &Context::default()
        ),
        Decision::Silent
    );
    assert_eq!(
        p.evaluate(&user("111", "a"), "s3:ListBucket", B, &Context::default()),
        Decision::Allow
    );
}

#[test]
fn an_explicit_deny_beats_any_allow() {
    let p = policy(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"{B}/*"}},
           {{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::1:user/eve"}},"Action":"s3:GetObject","Resource":"{B}/*"}}"#
    ));
    let c = Context::default();
    let r = format!("{B}/k");
    assert_eq!(
        p.evaluate(&user("1", "eve"), "s3:GetObject", &r, &c),
        Decision::Deny
    );
    assert_eq!(
        p.evaluate(&user("1", "eve"), "s3:PutObject", &r, &c),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(&user("1", "bob"), "s3:GetObject", &r, &c),
        Decision::Allow
    );
    assert!(p.is_public());
}

#[test]
fn not_principal_not_action_not_resource() {
    let p = policy(&format!(
        r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":"arn:aws:iam::1:root"}},"NotAction":"s3:GetObject","NotResource":"{B}/open/*"}}"#
    ));
    let c = Context::default();
    let closed = format!("{B}/closed/k");
    assert_eq!(
        p.evaluate(&user("2", "x"), "s3:PutObject", &closed, &c),
        Decision::Deny
    );
    assert_eq!(
        p.evaluate(&user("1", "x"), "s3:PutObject", &closed, &c),
        Decision::Silent
    );
    assert_eq!(
        p.evaluate(&user("2", "x"), "s3:GetObject", &closed, &c),
        Decision::Silent
    );
    assert_eq!(
        p.evaluate(&user("2", "x"), "s3:PutObject", &format!("{B}/open/k"), &c),
        Decision::Silent
    );
    assert!(!p.is_public());
}

#[test]
fn string_operators() {
    let p = cond("StringEquals", r#"{"aws:UserAgent":["curl/8","wget"]}"#);
    assert!(allows(&p, &ctx(&[("aws:useragent", "curl/8")])));
    assert!(!allows(&p, &ctx(&[("aws:UserAgent", "CURL/8")])));
    assert!(!allows(&p, &Context::default()));
    let p = cond("StringNotEquals", r#"{"aws:UserAgent":"curl/8"}"#);
    assert!(!allows(&p, &ctx(&[("aws:UserAgent", "curl/8")])));
    assert!(allows(&p, &ctx(&[("aws:UserAgent", "x")])));
    assert!(
        allows(&p, &Context::default()),
        "negated, key absent: holds"
    );
    let p = cond("StringEqualsIgnoreCase", r#"{"aws:UserAgent":"curl/8"}"#);
    assert!(allows(&p, &ctx(&[("aws:UserAgent", "CURL/8")])));
    let p = cond("StringNotEqualsIgnoreCase", r#"{"aws:UserAgent":"curl/8"}"#);
    assert!(!allows(&p, &ctx(&[("aws:UserAgent", "CURL/8")])));
    let p = cond("StringLike", r#"{"aws:Referer":"https://*.example.com/*"}"#);
    assert!(allows(
        &p,
        &ctx(&[("aws:Referer", "https://www.example.com/page")])
    ));
    assert!(!allows(&p, &ctx(&[("aws:Referer", "https://evil.test/")])));
    let p = cond("StringNotLike", r#"{"s3:prefix":"private/*"}"#);
    assert!(allows(&p, &ctx(&[("s3:prefix", "public/")])));
    assert!(!allows(&p, &ctx(&[("s3:prefix", "private/a")])));
}

#[test]
fn numeric_operators() {
    let n = |op: &str, v: &str| {
        allows(
            &cond(op, r#"{"s3:max-keys":"10"}"#),
            &ctx(&[("s3:max-keys", v)]),
        )
    };
    assert!(n("NumericEquals", "10") && !n("NumericEquals", "11"));
    assert!(n("NumericNotEquals", "11") && !n("NumericNotEquals", "10"));
    assert!(n("NumericLessThan", "9") && !n("NumericLessThan", "10"));
    assert!(n("NumericLessThanEquals", "10") && !n("NumericLessThanEquals", "11"));
    assert!(n("NumericGreaterThan", "11") && !n("NumericGreaterThan", "10"));
    assert!(n("NumericGreaterThanEquals", "10") && !n("NumericGreaterThanEquals", "9"));
    assert!(!n("NumericEquals", "ten"));
}

#[test]
fn date_operators() {
    let at = "2026-06-01T00:00:00Z";
    let d = |op: &str, v: &str| {
        allows(
            &cond(op, &format!(r#"{{"aws:CurrentTime":"{at}"}}"#)),
            &ctx(&[("aws:CurrentTime", v)]),
        )
    };
    let before = "2026-05-31T23:59:59Z";
    let after = "2026-06-01T00:00:01Z";
    assert!(d("DateEquals", at) && !d("DateEquals", after));
    assert!(d("DateNotEquals", after) && !d("DateNotEquals", at));
    assert!(d("DateLessThan", before) && !d("DateLessThan", at));
    assert!(d("DateLessThanEquals", at) && !d("DateLessThanEquals", after));
    assert!(d("DateGreaterThan", after) && !d("DateGreaterThan", at));
    assert!(d("DateGreaterThanEquals", at) && !d("DateGreaterThanEquals", before));
    // Epoch seconds work too.
    assert!(d("DateEquals", "1780272000"));
}

#[test]
fn bool_ip_and_null_operators() {
    let p = cond("Bool", r#"{"aws:SecureTransport":"true"}"#);
    assert!(allows(&p, &ctx(&[("aws:SecureTransport", "true")])));
    assert!(!allows(&p, &ctx(&[("aws:SecureTransport", "false")])));
    let p = cond(
        "IpAddress",
        r#"{"aws:SourceIp":["10.0.0.0/8","127.0.0.1/32","::1"]}"#,
    );
    assert!(allows(&p, &ctx(&[("aws:SourceIp", "10.1.2.3")])));
    assert!(allows(&p, &ctx(&[("aws:SourceIp", "127.0.0.1")])));
    assert!(allows(&p, &ctx(&[("aws:SourceIp", "::1")])));
    assert!(!allows(&p, &ctx(&[("aws:SourceIp", "192.168.1.1")])));
    let p = cond("NotIpAddress", r#"{"aws:SourceIp":"10.0.0.0/8"}"#);
    assert!(allows(&p, &ctx(&[("aws:SourceIp", "192.168.1.1")])));
    assert!(!allows(&p, &ctx(&[("aws:SourceIp", "10.9.9.9")])));
    let p = cond("Null", r#"{"s3:x-amz-server-side-encryption":"true"}"#);
    assert!(allows(&p, &Context::default()));
    assert!(!allows(
        &p,
        &ctx(&[("s3:x-amz-server-side-encryption", "AES256")])
    ));
    let p = cond("Null", r#"{"s3:x-amz-server-side-encryption":"false"}"#);
    assert!(allows(
        &p,
        &ctx(&[("s3:x-amz-server-side-encryption", "AES256")])
    ));
}

#[test]
fn if_exists_and_set_qualifiers() {
    let p = cond("StringEqualsIfExists", r#"{"s3:x-amz-acl":"private"}"#);
    assert!(allows(&p, &Context::default()));
    assert!(allows(&p, &ctx(&[("s3:x-amz-acl", "private")])));
    assert!(!allows(&p, &ctx(&[("s3:x-amz-acl", "public-read")])));
    let p = cond("NumericLessThanIfExists", r#"{"s3:max-keys":"5"}"#);
    assert!(allows(&p, &Context::default()));
    assert!(!allows(&p, &ctx(&[("s3:max-keys", "50")])));
    let mut two = ctx(&[("s3:RequestObjectTag/team", "a")]);
    two.set("s3:RequestObjectTag/team", "b");
    let p = cond(
        "ForAnyValue:StringEquals",
        r#"{"s3:RequestObjectTag/team":"a"}"#,
    );
    assert!(allows(&p, &two));
    let p = cond(
        "ForAllValues:StringEquals",
        r#"{"s3:RequestObjectTag/team":"a"}"#,
    );
    assert!(!allows(&p, &two));
    let p = cond(
        "ForAllValues:StringEquals",
        r#"{"s3:RequestObjectTag/team":["a","b"]}"#,
    );
    assert!(allows(&p, &two));
}

#[test]
fn conditions_and_together() {
    let p = policy(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"{B}/*",
            "Condition":{{"IpAddress":{{"aws:SourceIp":"127.0.0.0/8"}},"Bool":{{"aws:SecureTransport":"true"}}}}}}"#
    ));
    assert!(allows(
        &p,
        &ctx(&[
            ("aws:SourceIp", "127.0.0.1"),
            ("aws:SecureTransport", "true")
        ])
    ));
    assert!(!allows(
        &p,
        &ctx(&[
            ("aws:SourceIp", "127.0.0.1"),
            ("aws:SecureTransport", "false")
        ])
    ));
    assert!(!p.is_public(), "a conditional allow is not public");
}

#[test]
fn malformed_policies_are_refused_with_a_reason() {
    let bad = |text: &str, why: &str| {
        let e = Policy::parse(text, "b").unwrap_err();
        assert!(e.contains(why), "{text}: {e}");
    };
    let st = |body: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#);
    bad("{", "not JSON");
    bad(r#"{"Version":"2012-10-17"}"#, "Statement");
    bad(r#"{"Version":"2099-01-01","Statement":[]}"#, "Version");
    bad(
        &st(r#"{"Effect":"Maybe","Principal":"*","Action":"s3:*","Resource":"*"}"#),
        "Effect",
    );
    bad(
        &st(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#),
        "Principal",
    );
    bad(
        &st(r#"{"Effect":"Allow","Principal":"*","Resource":"*"}"#),
        "Action",
    );
    bad(
        &st(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*"}"#),
        "Resource",
    );
    bad(
        &st(r#"{"Effect":"Allow","Principal":"*","Action":"ec2:Run","Resource":"*"}"#),
        "invalid action",
    );
    bad(
        &st(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::other/*"}"#,
        ),
        "invalid resource",
    );
    bad(
        &st(r#"{"Effect":"Allow","Principal":{"AWS":"bob:x"},"Action":"s3:*","Resource":"*"}"#),
        "principal",
    );
    bad(
        &st(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringSorta":{"a":"b"}}}"#,
        ),
        "Invalid Condition type",
    );
    bad(
        &st(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"nope"}}}"#,
        ),
        "invalid value",
    );
    bad(
        &st(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Extra":1}"#),
        "unknown statement field",
    );
    // A single statement object (not a list) is fine.
    Policy::parse(
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
        "b",
    )
    .unwrap();
}
