"""Bucket policies (imported by s3_checks.py), with the identities of the test
stack: admin (AK/SK), reader (Read/List on `shared`), uploader (shared/up/*) and no
anonymous rights outside `public`. Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus,
MalformedPolicy, and enforcement: a prefix opened to anonymous readers, a Deny that
beats a user's own rights (also for presigned URLs and DeleteObjects keys), an IP
condition, a SecureTransport condition."""

import json

from botocore.exceptions import ClientError

from s3_checks import client, code_of, unsigned


def policies(endpoint, ak, sk):
    admin = client(endpoint, ak, sk)
    reader = client(endpoint, "READERKEY", "readersecret")
    b = "shared"
    admin.create_bucket(Bucket=b)
    for k in ("pub/a.txt", "priv/b.txt", "ip/c.txt", "tls/d.txt", "keep/e.txt"):
        admin.put_object(Bucket=b, Key=k, Body=k.encode())
    arn = f"arn:aws:s3:::{b}"

    # Nothing yet: anonymous reads are refused, the reader reads everything.
    assert unsigned("GET", f"{endpoint}/{b}/pub/a.txt")[0] == 403
    assert code_of(admin.get_bucket_policy, Bucket=b) == "NoSuchBucketPolicy"
    assert reader.get_object(Bucket=b, Key="priv/b.txt")["Body"].read() == b"priv/b.txt"

    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PublicPrefix", "Effect": "Allow", "Principal": "*",
             "Action": "s3:GetObject", "Resource": f"{arn}/pub/*"},
            {"Sid": "NoPrivForReader", "Effect": "Deny",
             "Principal": {"AWS": "arn:aws:iam::reader:user/reader"},
             "Action": ["s3:GetObject"], "Resource": f"{arn}/priv/*"},
            {"Sid": "LoopbackOnly", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": f"{arn}/ip/*", "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
            {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
             "Resource": f"{arn}/tls/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "Keep", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
             "Resource": f"{arn}/keep/*"},
        ],
    }
    text = json.dumps(doc)
    admin.put_bucket_policy(Bucket=b, Policy=text)
    assert json.loads(admin.get_bucket_policy(Bucket=b)["Policy"]) == doc
    assert admin.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is True

    # Anonymous: the opened prefix only.
    assert unsigned("GET", f"{endpoint}/{b}/pub/a.txt") == (200, b"pub/a.txt")
    assert unsigned("GET", f"{endpoint}/{b}/priv/b.txt")[0] == 403
    # The reader's own Read on `shared` loses to the explicit Deny, presigned too.
    assert code_of(reader.get_object, Bucket=b, Key="priv/b.txt") == "AccessDenied"
    url = reader.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "priv/b.txt"})
    assert unsigned("GET", url)[0] == 403
    url = reader.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "pub/a.txt"})
    assert unsigned("GET", url) == (200, b"pub/a.txt")
    # The IP condition holds on loopback.
    assert unsigned("GET", f"{endpoint}/{b}/ip/c.txt") == (200, b"ip/c.txt")
    # Plain HTTP: the SecureTransport Deny applies even to the admin.
    assert code_of(admin.get_object, Bucket=b, Key="tls/d.txt") == "AccessDenied"
    # DeleteObjects checks the policy per key.
    r = admin.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "keep/e.txt"}, {"Key": "pub/a.txt"}]})
    assert [d["Key"] for d in r.get("Deleted", [])] == ["pub/a.txt"], r
    assert [e["Code"] for e in r.get("Errors", [])] == ["AccessDenied"], r
    assert code_of(admin.delete_object, Bucket=b, Key="keep/e.txt") == "AccessDenied"

    # An IP range that does not hold.
    doc["Statement"][2]["Condition"]["IpAddress"]["aws:SourceIp"] = "10.0.0.0/8"
    admin.put_bucket_policy(Bucket=b, Policy=json.dumps(doc))
    assert unsigned("GET", f"{endpoint}/{b}/ip/c.txt")[0] == 403

    # Malformed policies are refused with a reason and change nothing.
    for bad in ("{", json.dumps({"Statement": []}),
                json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                           "Resource": "arn:aws:s3:::other-bucket/*"}]})):
        try:
            admin.put_bucket_policy(Bucket=b, Policy=bad)
            raise AssertionError(f"accepted {bad}")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "MalformedPolicy", e.response
    assert json.loads(admin.get_bucket_policy(Bucket=b)["Policy"]) == doc
    # Only admins change policies.
    assert code_of(reader.put_bucket_policy, Bucket=b, Policy=text) == "AccessDenied"

    admin.delete_bucket_policy(Bucket=b)
    assert code_of(admin.get_bucket_policy, Bucket=b) == "NoSuchBucketPolicy"
    assert unsigned("GET", f"{endpoint}/{b}/ip/c.txt")[0] == 403
    assert reader.get_object(Bucket=b, Key="priv/b.txt")["Body"].read() == b"priv/b.txt"
