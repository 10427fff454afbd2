"""Lifecycle rules driven by boto3 against a gateway whose lifecycle "day" lasts a few
seconds: configuration round trip and validation, expiration by prefix, tag and size,
x-amz-expiration, noncurrent versions, expired delete markers, aborts of incomplete
uploads, and expired data really gone (chunks deleted, space vacuumed)."""

import datetime
import json
import time
import urllib.request

from botocore.exceptions import ClientError

from s3_checks import client, fails

DEADLINE = 90


def exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise


def until(what, ok):
    end = time.time() + DEADLINE
    while time.time() < end:
        if ok():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def put_rules(s3, bucket, rules):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket,
                                          LifecycleConfiguration={"Rules": rules})


def expiration(endpoint, ak, sk, filer, master):
    s3 = client(endpoint, ak, sk)
    b = "lc-expire"
    s3.create_bucket(Bucket=b)
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
         "Expiration": {"Days": 1}},
        {"ID": "tmp", "Status": "Enabled",
         "Filter": {"Tag": {"Key": "tmp", "Value": "yes"}}, "Expiration": {"Days": 2}},
        {"ID": "big", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "big/", "ObjectSizeGreaterThan": 1000}},
         "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""},
         "Expiration": {"Days": 1}},
    ]
    put_rules(s3, b, rules)
    got = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert [r["ID"] for r in got] == ["logs", "tmp", "big", "off"], got
    assert got[2]["Filter"] == {"And": {"Prefix": "big/", "ObjectSizeGreaterThan": 1000}}, got
    # Malformed and unsupported rules are refused.
    fails("InvalidArgument", put_rules, s3, b, [{"ID": "x", "Status": "Enabled",
                                                 "Filter": {"Prefix": ""},
                                                 "Expiration": {"Days": 0}}])
    fails("NotImplemented", put_rules, s3, b, [{"ID": "x", "Status": "Enabled",
                                                "Filter": {"Prefix": ""},
                                                "Transitions": [{"Days": 1,
                                                                 "StorageClass": "GLACIER"}]}])

    payload = b"L" * (2 << 20)
    for k in ["logs/a", "logs/deep/b"]:
        s3.put_object(Bucket=b, Key=k, Body=payload)
    r = s3.put_object(Bucket=b, Key="logs/c", Body=b"c")
    assert 'rule-id="logs"' in r["Expiration"], r
    s3.put_object(Bucket=b, Key="tagged", Body=b"t", Tagging="tmp=yes")
    s3.put_object(Bucket=b, Key="tagged-no", Body=b"t", Tagging="tmp=no")
    s3.put_object(Bucket=b, Key="big/small", Body=b"s" * 10)
    s3.put_object(Bucket=b, Key="big/large", Body=b"L" * 2000)
    s3.put_object(Bucket=b, Key="keep", Body=b"k")
    h = s3.head_object(Bucket=b, Key="tagged")
    assert 'rule-id="tmp"' in h["Expiration"] and "expiry-date=" in h["Expiration"], h
    g = s3.get_object(Bucket=b, Key="logs/a", Range="bytes=0-0")
    assert 'rule-id="logs"' in g["Expiration"], g
    assert "Expiration" not in s3.head_object(Bucket=b, Key="keep")

    # Where logs/a's bytes are, to see them go.
    meta = get_json(f"{filer}/buckets/{b}/logs/a?metadata=true")
    fid = meta["chunks"][0]["file_id"]
    vid = fid.split(",")[0]
    loc = get_json(f"{master}/dir/lookup?volumeId={vid}")["locations"][0]["url"]
    assert http_status(f"http://{loc}/{fid}") == 200

    gone = ["logs/a", "logs/deep/b", "logs/c", "tagged", "big/large"]
    until("the rules to expire " + ", ".join(gone),
          lambda: not any(exists(s3, b, k) for k in gone))
    for k in ["tagged-no", "big/small", "keep"]:
        assert exists(s3, b, k), k
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b).get("Contents", []))
    assert listed == ["big/small", "keep", "tagged-no"], listed

    # Really gone: the chunk is deleted, and a vacuum gives the space back.
    until("the expired chunk to be deleted", lambda: http_status(f"http://{loc}/{fid}") == 404)

    def volume_size():
        st = get_json(f"http://{loc}/status")
        return next(v["size"] for v in st["Volumes"] if str(v["id"]) == vid)

    before = volume_size()
    get_json(f"{master}/vol/vacuum?garbageThreshold=0.0001")
    until("a vacuum to reclaim the expired bytes", lambda: volume_size() < before - (3 << 20))

    s3.delete_bucket_lifecycle(Bucket=b)
    fails("NoSuchLifecycleConfiguration", s3.get_bucket_lifecycle_configuration, Bucket=b)


def versions(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    b = "lc-versions"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    # Keep the newest noncurrent version of every key; others go one day after they
    # stopped being current. Lone delete markers go.
    put_rules(s3, b, [
        {"ID": "noncurrent", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
        {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "gone/"},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ])
    ids = [s3.put_object(Bucket=b, Key="doc", Body=f"v{i}".encode())["VersionId"]
           for i in range(4)]
    s3.put_object(Bucket=b, Key="gone/x", Body=b"x")
    s3.delete_object(Bucket=b, Key="gone/x")
    s3.delete_object(Bucket=b, Key="gone/x", VersionId=s3.list_object_versions(
        Bucket=b, Prefix="gone/x")["Versions"][0]["VersionId"])

    def versions_of(key):
        r = s3.list_object_versions(Bucket=b, Prefix=key)
        return ([v["VersionId"] for v in r.get("Versions", []) if v["Key"] == key],
                [m["VersionId"] for m in r.get("DeleteMarkers", []) if m["Key"] == key])

    # v3 current, v2 kept (the newest noncurrent), v1 and v0 go.
    until("the old noncurrent versions to go", lambda: versions_of("doc")[0] == ids[:1:-1])
    until("the lone delete marker to go", lambda: versions_of("gone/x") == ([], []))
    assert s3.get_object(Bucket=b, Key="doc")["Body"].read() == b"v3"
    assert s3.get_object(Bucket=b, Key="doc", VersionId=ids[2])["Body"].read() == b"v2"


def aborts(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    b = "lc-aborts"
    s3.create_bucket(Bucket=b)
    put_rules(s3, b, [{"ID": "abort", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
                       "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}])
    stale = s3.create_multipart_upload(Bucket=b, Key="tmp/upload")["UploadId"]
    s3.upload_part(Bucket=b, Key="tmp/upload", UploadId=stale, PartNumber=1, Body=b"p" * 1000)
    kept = s3.create_multipart_upload(Bucket=b, Key="other/upload")["UploadId"]

    def uploads():
        return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", [])]

    until("the stale upload to be aborted", lambda: stale not in uploads())
    assert kept in uploads()
    fails("NoSuchUpload", s3.list_parts, Bucket=b, Key="tmp/upload", UploadId=stale)


def many(endpoint, ak, sk, count):
    """Puts `count` objects under an expiring prefix (for the restart test)."""
    s3 = client(endpoint, ak, sk)
    b = "lc-many"
    s3.create_bucket(Bucket=b)
    for i in range(int(count)):
        s3.put_object(Bucket=b, Key=f"k/{i:05}", Body=b"x")
    # A date in the past: everything is due at once, in one run.
    put_rules(s3, b, [{"ID": "all", "Status": "Enabled", "Filter": {"Prefix": "k/"},
                       "Expiration": {"Date": datetime.datetime(2020, 1, 1,
                                                                 tzinfo=datetime.timezone.utc)}}])


def many_gone(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    until("every object of lc-many to expire",
          lambda: s3.list_objects_v2(Bucket="lc-many").get("KeyCount", 0) == 0)
