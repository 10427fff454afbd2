"""boto3 scenarios against a running kelp S3 gateway (run by s3/tests/boto3.rs).

usage: s3_checks.py <scenario> <endpoint> <access key> <secret key>
Every check is an assert: a failure exits non-zero with a traceback.
"""

import base64
import concurrent.futures
import datetime
import hashlib
import sys

import boto3
import botocore
from botocore.client import Config
from botocore.exceptions import ClientError


def client(endpoint, ak, sk, unsigned=False):
    cfg = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1},
        signature_version=botocore.UNSIGNED if unsigned else "s3v4",
        read_timeout=30,
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        region_name="us-east-1",
        config=cfg,
    )


def fails(code, fn, *args, **kwargs):
    """Runs fn and checks it fails with S3 error `code`; returns the HTTP status."""
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert got == code or str(status) == code, f"wanted {code}, got {got} ({status}): {e}"
        return status
    raise AssertionError(f"{fn.__name__} succeeded; wanted {code}")


def code_of(fn, **kw):
    """The S3 error code fn fails with, or "ok"."""
    try:
        fn(**kw)
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]


def unsigned(method, url, body=None):
    """(status, body) of one unsigned HTTP request, as a browser or curl sends it."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, method=method, data=body)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def body(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


# ---------------------------------------------------------------- listing

def expected(keys, prefix="", delimiter=None, after=None):
    """S3's answer as a list of ("K", key) / ("P", prefix), in order."""
    out = []
    for k in sorted(keys, key=lambda k: k.encode()):
        if not k.startswith(prefix):
            continue
        item = ("K", k)
        if delimiter:
            i = k.find(delimiter, len(prefix))
            if i >= 0:
                item = ("P", k[: i + len(delimiter)])
        if after is not None and item[1].encode() <= after.encode():
            continue
        if out and out[-1] == item:
            continue
        out.append(item)
    return out


def page_items(resp):
    items = [("K", o["Key"]) for o in resp.get("Contents", [])]
    items += [("P", p["Prefix"]) for p in resp.get("CommonPrefixes", [])]
    return sorted(items, key=lambda x: x[1].encode())


def list_all_v2(s3, bucket, page, **kw):
    items, token, pages = [], None, 0
    while True:
        args = dict(Bucket=bucket, MaxKeys=page, **kw)
        if token:
            args["ContinuationToken"] = token
        r = s3.list_objects_v2(**args)
        got = page_items(r)
        assert len(got) <= page
        assert r["KeyCount"] == len(got)
        items += got
        pages += 1
        assert pages < 10000
        if not r["IsTruncated"]:
            return items
        token = r["NextContinuationToken"]


def list_all_v1(s3, bucket, page, **kw):
    items, marker = [], None
    while True:
        args = dict(Bucket=bucket, MaxKeys=page, **kw)
        if marker:
            args["Marker"] = marker
        r = s3.list_objects(**args)
        got = page_items(r)
        items += got
        if not r["IsTruncated"]:
            return items
        marker = r.get("NextMarker") or got[-1][1]


def listing(s3):
    import time
    t0 = time.time()
    b = "list-bucket"
    s3.create_bucket(Bucket=b)
    keys = [
        "a-c", "a/b", "a/c/d", "a0", "a.b", "a!x", "a b", "a/", "b/x", "é/x",
        "日本/語", "x%y", "x+y", "sp ace/f n", "z/y/x/w", "z/y/", "a/c/e",
    ]
    # Keys ending in '/' are directory markers: kelp keeps them empty.
    content = {k: b"" if k.endswith("/") else k.encode() for k in keys}
    for k in keys:
        # An empty Body makes botocore send `Expect: 100-continue` with nothing to
        # continue; the gateway closes such connections so the next request is not
        # misread (docs/s3.md, client quirks).
        s3.put_object(Bucket=b, Key=k, Body=content[k])
    for k in keys:
        assert body(s3, b, k) == content[k], k

    cases = [
        dict(),
        dict(delimiter="/"),
        dict(prefix="a"),
        dict(prefix="a", delimiter="/"),
        dict(prefix="a/"),
        dict(prefix="a/", delimiter="/"),
        dict(prefix="a/c", delimiter="/"),
        dict(prefix="z/y/", delimiter="/"),
        dict(prefix="nothing"),
        dict(prefix="a/../"),
        dict(prefix="a//"),
        dict(prefix="/a"),
        dict(delimiter="-"),
        dict(delimiter="b"),
        dict(after="a-c"),
        dict(after="a/", delimiter="/"),
        dict(after="a/b"),
        dict(after="a0", delimiter="/"),
        dict(after="zzz"),
        dict(prefix="a/", after="a"),
    ]
    for c in cases:
        want = expected(keys, c.get("prefix", ""), c.get("delimiter"), c.get("after"))
        kw = {}
        if "prefix" in c:
            kw["Prefix"] = c["prefix"]
        if "delimiter" in c:
            kw["Delimiter"] = c["delimiter"]
        for page in (1, 2, 3, 1000):
            args = dict(kw)
            if "after" in c:
                args["StartAfter"] = c["after"]
            got = list_all_v2(s3, b, page, **args)
            assert got == want, f"v2 {c} page {page}:\n got {got}\nwant {want}"
            if "after" not in c:
                got = list_all_v1(s3, b, page, **kw)
                assert got == want, f"v1 {c} page {page}:\n got {got}\nwant {want}"

    print(f"listing: small cases {time.time() - t0:.1f}s")
    # encoding-type=url given explicitly: boto3 does not decode, we see the raw form.
    r = s3.list_objects_v2(Bucket=b, EncodingType="url", Prefix="sp ace/")
    assert [o["Key"] for o in r["Contents"]] == ["sp%20ace/f%20n"], r["Contents"]
    assert r["Prefix"] == "sp%20ace/"
    r = s3.list_objects_v2(Bucket=b, EncodingType="url", Prefix="x")
    assert [o["Key"] for o in r["Contents"]] == ["x%25y", "x%2By"], r["Contents"]

    # Sizes and ETags in listings match the objects.
    r = s3.list_objects_v2(Bucket=b)
    for o in r["Contents"]:
        assert o["Size"] == len(content[o["Key"]])
        assert o["ETag"] == '"%s"' % hashlib.md5(content[o["Key"]]).hexdigest()

    # 2,500 keys: continuation tokens, and a delimiter over many prefixes.
    m = "many-bucket"
    s3.create_bucket(Bucket=m)
    many = [f"k/{i:05d}" for i in range(2000)] + [f"d{i % 50:02d}/f{i}" for i in range(500)]
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda k: s3.put_object(Bucket=m, Key=k, Body=b"x"), many))
    print(f"listing: 2500 puts done at {time.time() - t0:.1f}s")
    pager = s3.get_paginator("list_objects_v2")
    got, pages = [], 0
    for p in pager.paginate(Bucket=m):
        pages += 1
        got += [o["Key"] for o in p.get("Contents", [])]
    assert pages == 3, pages
    assert got == sorted(many, key=lambda k: k.encode()), "2500-key listing out of order"
    prefixes = []
    for p in pager.paginate(Bucket=m, Delimiter="/", PaginationConfig={"PageSize": 7}):
        prefixes += [c["Prefix"] for c in p.get("CommonPrefixes", [])]
        assert not p.get("Contents")
    assert prefixes == [f"d{i:02d}/" for i in range(50)] + ["k/"], prefixes
    got = []
    for p in pager.paginate(Bucket=m, Prefix="k/", StartAfter="k/01499"):
        got += [o["Key"] for o in p.get("Contents", [])]
    assert got == [f"k/{i:05d}" for i in range(1500, 2000)]
    v1 = list_all_v1(s3, m, 1000, Prefix="k/")
    assert len(v1) == 2000
    print(f"listing: all done at {time.time() - t0:.1f}s")


# ---------------------------------------------------------------- objects

def objects(s3):
    b = "obj-bucket"
    s3.create_bucket(Bucket=b)
    fails("BucketAlreadyOwnedByYou", s3.create_bucket, Bucket=b)
    fails("NoSuchBucket", s3.put_object, Bucket="no-such-bucket", Key="k", Body=b"x")
    fails("NoSuchBucket", s3.list_objects_v2, Bucket="no-such-bucket")
    assert s3.get_bucket_location(Bucket=b).get("LocationConstraint") in (None, "")
    s3.head_bucket(Bucket=b)
    fails("404", s3.head_bucket, Bucket="no-such-bucket")

    data = bytes(range(256)) * 40
    md5 = hashlib.md5(data).hexdigest()
    r = s3.put_object(
        Bucket=b, Key="dir/obj.bin", Body=data, ContentType="application/x-test",
        Metadata={"Color": "Blue", "n": "1"}, CacheControl="max-age=60",
        ContentDisposition='attachment; filename="o.bin"', ContentEncoding="identity",
        Tagging="a=1&b=two",
    )
    etag = r["ETag"]
    assert etag == f'"{md5}"', etag
    h = s3.head_object(Bucket=b, Key="dir/obj.bin")
    assert h["ContentLength"] == len(data)
    assert h["ContentType"] == "application/x-test"
    assert h["Metadata"] == {"color": "Blue", "n": "1"}, h["Metadata"]
    assert h["CacheControl"] == "max-age=60"
    assert h["ContentDisposition"] == 'attachment; filename="o.bin"'
    assert h["ContentEncoding"] == "identity"
    g = s3.get_object(Bucket=b, Key="dir/obj.bin")
    assert g["Body"].read() == data
    assert g["TagCount"] == 2
    tags = s3.get_object_tagging(Bucket=b, Key="dir/obj.bin")["TagSet"]
    assert tags == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "two"}], tags
    lm = h["LastModified"]

    # Conditional GET / HEAD: RFC order, 304 and 412.
    def get(**kw):
        return s3.get_object(Bucket=b, Key="dir/obj.bin", **kw)

    hour = datetime.timedelta(hours=1)
    get(IfMatch=etag)
    get(IfMatch="*")
    fails("PreconditionFailed", get, IfMatch='"0123"')
    fails("304", get, IfNoneMatch=etag)
    get(IfNoneMatch='"0123"')
    fails("304", get, IfModifiedSince=lm)
    get(IfModifiedSince=lm - hour)
    fails("PreconditionFailed", get, IfUnmodifiedSince=lm - hour)
    get(IfUnmodifiedSince=lm + hour)
    get(IfMatch=etag, IfUnmodifiedSince=lm - hour)  # If-Match wins
    fails("304", get, IfNoneMatch=etag, IfModifiedSince=lm - hour)  # If-None-Match wins
    fails("304", s3.head_object, Bucket=b, Key="dir/obj.bin", IfNoneMatch=etag)
    fails("412", s3.head_object, Bucket=b, Key="dir/obj.bin", IfMatch='"x"')

    # Ranges.
    r = get(Range="bytes=0-9")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["ContentRange"] == f"bytes 0-9/{len(data)}"
    assert r["Body"].read() == data[:10]
    assert get(Range="bytes=-7")["Body"].read() == data[-7:]
    assert get(Range="bytes=10000-")["Body"].read() == data[10000:]
    assert get(Range="bytes=5000-999999")["Body"].read() == data[5000:]
    fails("InvalidRange", get, Range=f"bytes={len(data)}-")

    # Conditional PUT, Content-MD5.
    fails("PreconditionFailed", s3.put_object, Bucket=b, Key="dir/obj.bin", Body=b"x", IfNoneMatch="*")
    good = base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    s3.put_object(Bucket=b, Key="md5/ok", Body=b"hello", ContentMD5=good)
    fails("BadDigest", s3.put_object, Bucket=b, Key="md5/new", Body=b"hello", ContentMD5=bad)
    fails("404", s3.head_object, Bucket=b, Key="md5/new")
    fails("BadDigest", s3.put_object, Bucket=b, Key="md5/ok", Body=b"HELLO", ContentMD5=bad)
    assert body(s3, b, "md5/ok") == b"hello"
    fails("InvalidDigest", s3.put_object, Bucket=b, Key="md5/x", Body=b"hello", ContentMD5="nope")

    # Overwrites replace data, metadata and tags.
    s3.put_object(Bucket=b, Key="dir/obj.bin", Body=b"new")
    h = s3.head_object(Bucket=b, Key="dir/obj.bin")
    assert h["ContentLength"] == 3 and h.get("Metadata", {}) == {}
    assert s3.get_object_tagging(Bucket=b, Key="dir/obj.bin")["TagSet"] == []
    assert h["ContentType"] == "binary/octet-stream", h["ContentType"]

    # Awkward keys round-trip; keys that cannot name a path are refused cleanly.
    for k in ["sp ace/ünï code/%41%2F+plus", "a/b/c/d/e/f/g/h", "~tilde!'()*", "trailing.dot."]:
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
        assert body(s3, b, k) == k.encode(), k
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix=k)["Contents"]] == [k]
    for k in ["a//b", "x/../y", "./z", ".uploads/x", "q/./r"]:
        fails("InvalidArgument", s3.put_object, Bucket=b, Key=k, Body=b"x")
    fails("KeyTooLongError", s3.put_object, Bucket=b, Key="n" * 300, Body=b"x")
    fails("NoSuchKey", s3.get_object, Bucket=b, Key="missing/key")
    # Errors carry a request id, in the XML and as x-amz-request-id.
    try:
        s3.get_object(Bucket=b, Key="missing/key")
    except ClientError as e:
        rid = e.response["ResponseMetadata"].get("RequestId", "")
        assert len(rid) == 16, e.response
        assert e.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"] == rid
    fails("404", s3.head_object, Bucket=b, Key="dir")  # a directory is not an object
    # A key below an existing object's name collides in the filer.
    fails("409", s3.put_object, Bucket=b, Key="md5/ok/below", Body=b"x")

    # Directory markers.
    s3.put_object(Bucket=b, Key="folder/", Body=b"")
    assert s3.head_object(Bucket=b, Key="folder/")["ContentLength"] == 0
    s3.put_object(Bucket=b, Key="folder/inner.txt", Body=b"in")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix="folder")["Contents"]]
    assert keys == ["folder/", "folder/inner.txt"], keys
    r = s3.list_objects_v2(Bucket=b, Prefix="folder/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["folder/", "folder/inner.txt"]
    s3.delete_object(Bucket=b, Key="folder/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix="folder")["Contents"]]
    assert keys == ["folder/inner.txt"], keys
    fails("404", s3.head_object, Bucket=b, Key="folder/")
    fails("InvalidRequest", s3.put_object, Bucket=b, Key="data-in-marker/", Body=b"x")
    s3.put_object(Bucket=b, Key="lonely/", Body=b"")
    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert "lonely/" in [p["Prefix"] for p in r["CommonPrefixes"]]
    s3.delete_object(Bucket=b, Key="lonely/")
    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert "lonely/" not in [p["Prefix"] for p in r.get("CommonPrefixes", [])]

    # Copies: conditions on the source, COPY keeps metadata, REPLACE changes it.
    s3.put_object(Bucket=b, Key="src", Body=b"source", Metadata={"k": "v"}, ContentType="text/a")
    src_etag = s3.head_object(Bucket=b, Key="src")["ETag"]
    s3.copy_object(Bucket=b, Key="dst1", CopySource={"Bucket": b, "Key": "src"})
    h = s3.head_object(Bucket=b, Key="dst1")
    assert h["Metadata"] == {"k": "v"} and h["ContentType"] == "text/a" and h["ETag"] == src_etag
    s3.copy_object(Bucket=b, Key="dst2", CopySource={"Bucket": b, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"z": "1"}, ContentType="text/b")
    h = s3.head_object(Bucket=b, Key="dst2")
    assert h["Metadata"] == {"z": "1"} and h["ContentType"] == "text/b"
    assert body(s3, b, "dst2") == b"source"
    fails("PreconditionFailed", s3.copy_object, Bucket=b, Key="dst3",
          CopySource={"Bucket": b, "Key": "src"}, CopySourceIfMatch='"nope"')
    fails("InvalidRequest", s3.copy_object, Bucket=b, Key="src", CopySource={"Bucket": b, "Key": "src"})
    s3.copy_object(Bucket=b, Key="src", CopySource={"Bucket": b, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"k": "w"})
    assert s3.head_object(Bucket=b, Key="src")["Metadata"] == {"k": "w"}
    fails("NoSuchKey", s3.copy_object, Bucket=b, Key="d4", CopySource={"Bucket": b, "Key": "nope"})
    # Deleting the source leaves the copy readable (chunks are shared, refcounted).
    s3.delete_object(Bucket=b, Key="src")
    assert body(s3, b, "dst1") == b"source"

    # Buckets: only empty ones can be deleted.
    fails("BucketNotEmpty", s3.delete_bucket, Bucket=b)
    e = "empty-bucket"
    s3.create_bucket(Bucket=e)
    s3.put_object(Bucket=e, Key="deep/er/key", Body=b"x")
    s3.delete_object(Bucket=e, Key="deep/er/key")
    s3.delete_bucket(Bucket=e)
    fails("NoSuchBucket", s3.delete_bucket, Bucket=e)
    names = [x["Name"] for x in s3.list_buckets()["Buckets"]]
    assert b in names and e not in names
    fails("InvalidBucketName", s3.create_bucket, Bucket="Bad_Bucket")

    # Unsupported operations answer NotImplemented, not 500.
    # (Reading settings kelp does not keep is answered: see bucket_settings.)
    for fn, kw in [
        (s3.put_bucket_tagging, dict(Bucket=b, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})),
        (s3.put_bucket_lifecycle_configuration, dict(Bucket=b, LifecycleConfiguration={
            "Rules": [{"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""},
                       "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}]})),
    ]:
        assert fails("NotImplemented", fn, **kw) == 501
    # A policy without statements is malformed, not unsupported.
    assert fails("MalformedPolicy", s3.put_bucket_policy, Bucket=b, Policy="{}") == 400


# ---------------------------------------------------------------- delete objects

def delete_objects(s3):
    b = "del-bucket"
    s3.create_bucket(Bucket=b)
    keys = [f"d/{i}" for i in range(10)]
    for k in keys:
        s3.put_object(Bucket=b, Key=k, Body=b"x")
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in keys[:5]] + [{"Key": "d/missing"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(keys[:5] + ["d/missing"]), r
    assert not r.get("Errors")
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in keys[5:8]], "Quiet": True})
    assert not r.get("Deleted") and not r.get("Errors"), r
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]]
    assert left == keys[8:], left
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "a//b"}, {"Key": "d/8"}]})
    assert [d["Key"] for d in r["Deleted"]] == ["d/8"]
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("a//b", "InvalidArgument")], r


# ---------------------------------------------------------------- multipart

MiB = 1 << 20


def multipart(s3):
    b = "mp-bucket"
    s3.create_bucket(Bucket=b)
    parts_data = [bytes([i]) * (5 * MiB) for i in (1, 2)] + [b"tail" * 256]

    def start(key, **kw):
        return s3.create_multipart_upload(Bucket=b, Key=key, **kw)["UploadId"]

    def put(key, uid, n, data):
        return s3.upload_part(Bucket=b, Key=key, UploadId=uid, PartNumber=n, Body=data)["ETag"]

    uid = start("big/object.bin", ContentType="video/x-test", Metadata={"m": "1"})
    etags = [put("big/object.bin", uid, n + 1, d) for n, d in enumerate(parts_data)]
    ups = s3.list_multipart_uploads(Bucket=b)
    assert [(u["Key"], u["UploadId"]) for u in ups["Uploads"]] == [("big/object.bin", uid)]
    assert ".uploads" not in str(s3.list_objects_v2(Bucket=b))
    lp = s3.list_parts(Bucket=b, Key="big/object.bin", UploadId=uid)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in lp["Parts"]] == [
        (i + 1, len(d), etags[i]) for i, d in enumerate(parts_data)
    ]
    lp = s3.list_parts(Bucket=b, Key="big/object.bin", UploadId=uid, MaxParts=2)
    assert lp["IsTruncated"] and lp["NextPartNumberMarker"] == 2
    lp = s3.list_parts(Bucket=b, Key="big/object.bin", UploadId=uid, PartNumberMarker=2)
    assert [p["PartNumber"] for p in lp["Parts"]] == [3]

    def complete(key, uid, parts):
        return s3.complete_multipart_upload(
            Bucket=b, Key=key, UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
        )

    fails("InvalidPartOrder", complete, "big/object.bin", uid, [(2, etags[1]), (1, etags[0])])
    fails("InvalidPartOrder", complete, "big/object.bin", uid, [(1, etags[0]), (1, etags[0])])
    fails("InvalidPart", complete, "big/object.bin", uid, [(1, etags[1]), (2, etags[1])])
    fails("InvalidPart", complete, "big/object.bin", uid, [(1, etags[0]), (7, etags[1])])
    fails("NoSuchUpload", complete, "big/object.bin", "0" * 32, [(1, etags[0])])
    fails("NoSuchUpload", complete, "other/key", uid, [(1, etags[0])])
    fails("NoSuchUpload", s3.upload_part, Bucket=b, Key="big/object.bin", UploadId="../../x", PartNumber=1, Body=b"x")
    r = complete("big/object.bin", uid, [(n + 1, e) for n, e in enumerate(etags)])
    digest = hashlib.md5(b"".join(bytes.fromhex(e.strip('"')) for e in etags)).hexdigest()
    assert r["ETag"] == f'"{digest}-3"', r["ETag"]
    whole = b"".join(parts_data)
    g = s3.get_object(Bucket=b, Key="big/object.bin")
    assert g["ETag"] == r["ETag"] and g["ContentType"] == "video/x-test" and g["Metadata"] == {"m": "1"}
    assert g["Body"].read() == whole
    assert body(s3, b, "big/object.bin", Range=f"bytes={5 * MiB - 3}-{5 * MiB + 2}") == whole[5 * MiB - 3: 5 * MiB + 3]
    p2 = s3.get_object(Bucket=b, Key="big/object.bin", PartNumber=2)
    assert p2["PartsCount"] == 3 and p2["Body"].read() == parts_data[1]
    assert s3.list_multipart_uploads(Bucket=b).get("Uploads", []) == []
    fails("NoSuchUpload", s3.list_parts, Bucket=b, Key="big/object.bin", UploadId=uid)

    # Small parts in the middle are refused; only the last may be small.
    uid = start("small")
    e1 = put("small", uid, 1, b"tiny")
    e2 = put("small", uid, 2, b"x" * (5 * MiB))
    fails("EntityTooSmall", complete, "small", uid, [(1, e1), (2, e2)])
    s3.complete_multipart_upload(Bucket=b, Key="small", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert body(s3, b, "small") == b"tiny"

    # Abort.
    uid = start("aborted")
    put("aborted", uid, 1, b"z" * 100)
    s3.abort_multipart_upload(Bucket=b, Key="aborted", UploadId=uid)
    fails("NoSuchUpload", s3.abort_multipart_upload, Bucket=b, Key="aborted", UploadId=uid)
    fails("404", s3.head_object, Bucket=b, Key="aborted")

    # UploadPartCopy: whole object, an aligned and an unaligned range.
    uid = start("copied")
    c1 = s3.upload_part_copy(Bucket=b, Key="copied", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": b, "Key": "big/object.bin"},
                             CopySourceRange=f"bytes=0-{5 * MiB - 1}")["CopyPartResult"]["ETag"]
    c2 = s3.upload_part_copy(Bucket=b, Key="copied", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": b, "Key": "big/object.bin"},
                             CopySourceRange=f"bytes=100-{5 * MiB + 99}")["CopyPartResult"]["ETag"]
    c3 = s3.upload_part_copy(Bucket=b, Key="copied", UploadId=uid, PartNumber=3,
                             CopySource={"Bucket": b, "Key": "small"})["CopyPartResult"]["ETag"]
    complete("copied", uid, [(1, c1), (2, c2), (3, c3)])
    assert body(s3, b, "copied") == whole[: 5 * MiB] + whole[100: 5 * MiB + 100] + b"tiny"

    # Several uploads of one key, listed with markers and a delimiter.
    ids = sorted(start("same/key") for _ in range(3))
    other = start("other/x")
    ups = s3.list_multipart_uploads(Bucket=b, MaxUploads=2)
    assert ups["IsTruncated"]
    assert [(u["Key"], u["UploadId"]) for u in ups["Uploads"]] == [("other/x", other), ("same/key", ids[0])]
    ups = s3.list_multipart_uploads(Bucket=b, KeyMarker=ups["NextKeyMarker"], UploadIdMarker=ups["NextUploadIdMarker"])
    assert [u["UploadId"] for u in ups["Uploads"]] == ids[1:] and not ups["IsTruncated"]
    ups = s3.list_multipart_uploads(Bucket=b, Prefix="same/")
    assert [u["UploadId"] for u in ups["Uploads"]] == ids
    ups = s3.list_multipart_uploads(Bucket=b, Prefix="same/", KeyMarker="same/key", UploadIdMarker=ids[0])
    assert [u["UploadId"] for u in ups["Uploads"]] == ids[1:]
    ups = s3.list_multipart_uploads(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in ups["CommonPrefixes"]] == ["other/", "same/"]


def bucket_settings(s3):
    """Settings kelp does not keep answer as for a bucket that never had them."""
    b = "settings-bucket"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"x")
    v = s3.get_bucket_versioning(Bucket=b)
    assert "Status" not in v, v
    for fn in (s3.get_bucket_acl, lambda **kw: s3.get_object_acl(Key="k", **kw)):
        acl = fn(Bucket=b)
        assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"], acl
        assert acl["Owner"]["ID"] == acl["Grants"][0]["Grantee"]["ID"]
    fails("NoSuchKey", s3.get_object_acl, Bucket=b, Key="missing")
    fails("NoSuchCORSConfiguration", s3.get_bucket_cors, Bucket=b)
    fails("NoSuchBucketPolicy", s3.get_bucket_policy, Bucket=b)
    fails("NoSuchLifecycleConfiguration", s3.get_bucket_lifecycle_configuration, Bucket=b)
    fails("ServerSideEncryptionConfigurationNotFoundError", s3.get_bucket_encryption, Bucket=b)
    fails("NoSuchTagSet", s3.get_bucket_tagging, Bucket=b)
    fails("ObjectLockConfigurationNotFoundError", s3.get_object_lock_configuration, Bucket=b)
    fails("NoSuchBucket", s3.get_bucket_versioning, Bucket="no-such-bucket-here")
    fails("NoSuchBucket", s3.get_bucket_cors, Bucket="no-such-bucket-here")
    # Unversioned: every object is its one "null" version, the latest, in key order.
    for k in ("a/1", "a/2", "b", "c d"):
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
    seen, pages = [], 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=b, PaginationConfig={"PageSize": 2}):
        pages += 1
        for v in page.get("Versions", []):
            assert v["VersionId"] == "null" and v["IsLatest"], v
            seen.append((v["Key"], v["Size"]))
        assert not page.get("DeleteMarkers")
    assert seen == [("a/1", 3), ("a/2", 3), ("b", 1), ("c d", 3), ("k", 1)], seen
    assert pages == 3, pages
    r = s3.list_object_versions(Bucket=b, Delimiter="/", Prefix="")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/"], r
    assert [v["Key"] for v in r["Versions"]] == ["b", "c d", "k"], r
    # Changing the ones kelp does not keep is still refused.
    fails("NotImplemented", s3.put_bucket_tagging, Bucket=b,
          Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})


def main():
    scenario, endpoint, ak, sk = sys.argv[1:5]
    if scenario == "auth":
        from auth_checks import auth

        auth(endpoint, ak, sk)
    elif scenario == "streaming":
        from auth_checks import streaming

        streaming(endpoint, ak, sk, sys.argv[5] == "verifies")
    elif scenario in ("object_lock", "rest_overwrite"):
        import lock_checks

        getattr(lock_checks, scenario)(endpoint, ak, sk, sys.argv[5])
    elif scenario in ("versioning", "version_paging"):
        import version_checks

        getattr(version_checks, scenario)(endpoint, ak, sk)
    elif scenario == "acls":
        from acl_checks import acls

        acls(endpoint, ak, sk)
    elif scenario == "policies":
        from policy_checks import policies

        policies(endpoint, ak, sk)
    elif scenario == "cors":
        from cors_checks import cors

        cors(endpoint, ak, sk)
    elif scenario == "details":
        from detail_checks import details

        details(endpoint, ak, sk)
    elif scenario in ("conditional_writes", "object_attributes"):
        import conditional_checks

        getattr(conditional_checks, scenario)(endpoint, ak, sk)
    elif scenario in ("sse_c", "sse_c_needs_tls", "sse_s3_kms", "rotated_keys_still_read",
                      "no_plaintext_at_rest"):
        import sse_checks

        getattr(sse_checks, scenario)(endpoint, ak, sk, *sys.argv[5:])
    elif scenario in ("expiration", "versions", "aborts", "many", "many_gone"):
        import lifecycle_checks

        getattr(lifecycle_checks, scenario)(endpoint, ak, sk, *sys.argv[5:])
    elif scenario in ("checksums", "trailers", "virtual_host", "post_form"):
        import compat_checks

        getattr(compat_checks, scenario)(endpoint, ak, sk)
    else:
        globals()[scenario](client(endpoint, ak, sk))
    print(f"{scenario}: ok")


if __name__ == "__main__":
    main()
