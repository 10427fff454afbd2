"""Object lock (imported by s3_checks.py): buckets created with object lock, default
retention, GOVERNANCE (bypassable by an admin) and COMPLIANCE retention, legal holds,
the checksum S3 requires, and the filer REST API refusing to remove locked data."""

import datetime
import urllib.error
import urllib.parse
import urllib.request

import boto3
from botocore.client import Config

from s3_checks import body, client, fails

UTC = datetime.timezone.utc


def rest(method, url):
    """A filer REST call; returns the HTTP status."""
    req = urllib.request.Request(url, method=method, data=b"" if method in ("PUT", "POST") else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def object_lock(endpoint, ak, sk, filer):
    s3 = client(endpoint, ak, sk)
    b = "lock-bucket"
    s3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    c = s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
    assert c["ObjectLockEnabled"] == "Enabled" and "Rule" not in c, c
    fails("InvalidBucketState", s3.put_bucket_versioning, Bucket=b,
          VersioningConfiguration={"Status": "Suspended"})

    # Default retention applies to versions written without lock headers.
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    rule = s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]["Rule"]
    assert rule["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}, rule
    now = datetime.datetime.now(UTC)
    v = s3.put_object(Bucket=b, Key="gov", Body=b"g")["VersionId"]
    h = s3.head_object(Bucket=b, Key="gov")
    assert h["ObjectLockMode"] == "GOVERNANCE", h
    left = h["ObjectLockRetainUntilDate"] - now
    assert datetime.timedelta(hours=23) < left < datetime.timedelta(hours=25), left
    r = s3.get_object_retention(Bucket=b, Key="gov")["Retention"]
    assert r["Mode"] == "GOVERNANCE", r
    fails("AccessDenied", s3.delete_object, Bucket=b, Key="gov", VersionId=v)
    # A delete marker hides it but removes nothing.
    assert s3.delete_object(Bucket=b, Key="gov")["DeleteMarker"] is True
    assert body(s3, b, "gov", VersionId=v) == b"g"
    # An admin may bypass GOVERNANCE.
    s3.delete_object(Bucket=b, Key="gov", VersionId=v, BypassGovernanceRetention=True)
    fails("NoSuchVersion", s3.get_object, Bucket=b, Key="gov", VersionId=v)

    # GOVERNANCE retention is shortened only with the bypass.
    v = s3.put_object(Bucket=b, Key="gov2", Body=b"g2")["VersionId"]
    soon = now + datetime.timedelta(hours=1)
    fails("AccessDenied", s3.put_object_retention, Bucket=b, Key="gov2", VersionId=v,
          Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon})
    s3.put_object_retention(Bucket=b, Key="gov2", VersionId=v, BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon})

    # COMPLIANCE: never removed early, extended but never shortened.
    until = (now + datetime.timedelta(hours=1)).replace(microsecond=0)
    v2 = s3.put_object(Bucket=b, Key="comp", Body=b"c", ObjectLockMode="COMPLIANCE",
                       ObjectLockRetainUntilDate=until)["VersionId"]
    fails("AccessDenied", s3.delete_object, Bucket=b, Key="comp", VersionId=v2,
          BypassGovernanceRetention=True)
    fails("AccessDenied", s3.put_object_retention, Bucket=b, Key="comp", VersionId=v2,
          Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until - datetime.timedelta(minutes=5)})
    fails("AccessDenied", s3.put_object_retention, Bucket=b, Key="comp", VersionId=v2,
          BypassGovernanceRetention=True,
          Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until + datetime.timedelta(days=1)})
    later = until + datetime.timedelta(days=1)
    s3.put_object_retention(Bucket=b, Key="comp", VersionId=v2,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later})
    r = s3.get_object_retention(Bucket=b, Key="comp", VersionId=v2)["Retention"]
    assert r == {"Mode": "COMPLIANCE", "RetainUntilDate": later}, r

    # Legal holds.
    v3 = s3.put_object(Bucket=b, Key="held", Body=b"h")["VersionId"]
    s3.put_object_legal_hold(Bucket=b, Key="held", VersionId=v3, LegalHold={"Status": "ON"})
    assert s3.get_object_legal_hold(Bucket=b, Key="held")["LegalHold"]["Status"] == "ON"
    assert s3.head_object(Bucket=b, Key="held")["ObjectLockLegalHoldStatus"] == "ON"
    fails("AccessDenied", s3.delete_object, Bucket=b, Key="held", VersionId=v3,
          BypassGovernanceRetention=True)
    s3.put_object_legal_hold(Bucket=b, Key="held", VersionId=v3, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=b, Key="held", VersionId=v3, BypassGovernanceRetention=True)

    # Lock headers need an object lock bucket, and Content-MD5 or a checksum.
    s3.create_bucket(Bucket="no-lock")
    fails("InvalidRequest", s3.put_object, Bucket="no-lock", Key="x", Body=b"x",
          ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    fails("InvalidRequest", s3.get_object_retention, Bucket="no-lock", Key="x")
    bare = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak,
                        aws_secret_access_key=sk, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"},
                                      request_checksum_calculation="when_required",
                                      retries={"max_attempts": 1}))
    fails("InvalidRequest", bare.put_object, Bucket=b, Key="x", Body=b"x",
          ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)

    # The filer REST API cannot remove or replace locked data either.
    cur = f"{filer}/buckets/{b}/comp"
    assert rest("DELETE", cur) == 403
    assert rest("PUT", cur) == 403
    s3.put_object(Bucket=b, Key="other", Body=b"o", ChecksumAlgorithm="CRC32")
    assert rest("POST", cur + "?mv.from=" + urllib.parse.quote(f"/buckets/{b}/other")) == 403
    assert rest("DELETE", f"{filer}/buckets/{b}?recursive=true") == 403
    # A newer version moves the locked one under .versions: still protected there.
    s3.put_object(Bucket=b, Key="comp", Body=b"newer")
    old = f"{filer}/buckets/{b}/.versions/" + urllib.parse.quote(f"comp\x01{v2}")
    assert rest("DELETE", old) == 403
    assert rest("DELETE", f"{filer}/buckets/{b}/.versions?recursive=true") == 403
    assert body(s3, b, "comp", VersionId=v2) == b"c"


def rest_overwrite(endpoint, ak, sk, filer):
    """An S3 object overwritten through the filer REST API: its S3-only attributes
    (multipart ETag and part table, checksums) go, so S3 serves the new bytes right."""
    s3 = client(endpoint, ak, sk)
    b = "rest-over"
    s3.create_bucket(Bucket=b)
    uid = s3.create_multipart_upload(Bucket=b, Key="m", ChecksumAlgorithm="CRC32")["UploadId"]
    parts = []
    for n, data in enumerate([b"a" * (5 << 20), b"tail"], start=1):
        e = s3.upload_part(Bucket=b, Key="m", UploadId=uid, PartNumber=n, Body=data,
                           ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": e["ETag"], "ChecksumCRC32": e["ChecksumCRC32"]})
    s3.complete_multipart_upload(Bucket=b, Key="m", UploadId=uid, MultipartUpload={"Parts": parts})
    assert s3.head_object(Bucket=b, Key="m", PartNumber=2)["ContentLength"] == 4
    req = urllib.request.Request(f"{filer}/buckets/{b}/m", data=b"plain new bytes", method="PUT")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status in (200, 201), r.status
    g = s3.get_object(Bucket=b, Key="m", ChecksumMode="ENABLED")
    assert g["Body"].read() == b"plain new bytes"
    assert "-" not in g["ETag"] and "ChecksumCRC32" not in g, g
    h = s3.head_object(Bucket=b, Key="m", PartNumber=1)
    assert h["ContentLength"] == len(b"plain new bytes") and "PartsCount" not in h, h
