"""Conditional writes and GetObjectAttributes (imported by s3_checks.py): If-None-Match: *
and If-Match on PutObject and CompleteMultipartUpload, If-Match / IfMatchSize / IfMatchLastModifiedTime
on DeleteObject, and races: of many conditional writers of one key exactly one wins."""

import concurrent.futures

from botocore.exceptions import ClientError

from s3_checks import body, client, fails

MiB = 1 << 20


def race(fn, n):
    """Runs fn(i) for i in 0..n at once; returns (winners, HTTP statuses of the losers)."""
    def attempt(i):
        try:
            fn(i)
            return i, None
        except ClientError as e:
            return i, e.response["ResponseMetadata"]["HTTPStatusCode"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(attempt, range(n)))
    winners = [i for i, status in results if status is None]
    losers = [status for _, status in results if status is not None]
    return winners, losers


def conditional_writes(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    b = "cond-bucket"
    s3.create_bucket(Bucket=b)

    # If-None-Match: * creates only.
    s3.put_object(Bucket=b, Key="once", Body=b"first", IfNoneMatch="*")
    fails("PreconditionFailed", s3.put_object, Bucket=b, Key="once", Body=b"second", IfNoneMatch="*")
    assert body(s3, b, "once") == b"first"
    fails("NotImplemented", s3.put_object, Bucket=b, Key="once", Body=b"x", IfNoneMatch='"abc"')

    # 20 writers race to create one key: exactly one wins, every loser gets 412.
    winners, losers = race(
        lambda i: s3.put_object(Bucket=b, Key="raced", Body=f"writer {i}".encode() * 100,
                                IfNoneMatch="*"),
        20,
    )
    assert len(winners) == 1, f"winners: {winners}"
    assert losers == [412] * 19, f"losers: {losers}"
    raced = f"writer {winners[0]}".encode() * 100
    assert body(s3, b, "raced") == raced

    # If-Match replaces only what the writer saw.
    etag = s3.head_object(Bucket=b, Key="once")["ETag"]
    new = s3.put_object(Bucket=b, Key="once", Body=b"third", IfMatch=etag)["ETag"]
    assert new != etag
    fails("PreconditionFailed", s3.put_object, Bucket=b, Key="once", Body=b"stale", IfMatch=etag)
    assert body(s3, b, "once") == b"third"
    fails("NoSuchKey", s3.put_object, Bucket=b, Key="missing", Body=b"x", IfMatch=etag)
    fails("404", s3.head_object, Bucket=b, Key="missing")

    # Ten read-modify-write updates from the same ETag: one lands.
    winners, losers = race(
        lambda i: s3.put_object(Bucket=b, Key="once", Body=f"update {i}".encode(), IfMatch=new),
        10,
    )
    assert len(winners) == 1 and losers == [412] * 9, (winners, losers)
    assert body(s3, b, "once") == f"update {winners[0]}".encode()

    # Conditional deletes.
    h = s3.head_object(Bucket=b, Key="once")
    fails("PreconditionFailed", s3.delete_object, Bucket=b, Key="once", IfMatch='"0123"')
    fails("PreconditionFailed", s3.delete_object, Bucket=b, Key="once", IfMatchSize=h["ContentLength"] + 1)
    fails("PreconditionFailed", s3.delete_object, Bucket=b, Key="once",
          IfMatchLastModifiedTime=h["LastModified"].replace(year=2001))
    assert body(s3, b, "once") == f"update {winners[0]}".encode()
    s3.delete_object(Bucket=b, Key="once", IfMatch=h["ETag"], IfMatchSize=h["ContentLength"],
                     IfMatchLastModifiedTime=h["LastModified"])
    fails("404", s3.head_object, Bucket=b, Key="once")
    fails("NoSuchKey", s3.delete_object, Bucket=b, Key="once", IfMatch=h["ETag"])
    # Unconditional deletes of a missing key still succeed.
    s3.delete_object(Bucket=b, Key="once")

    # CompleteMultipartUpload honours both.
    def upload(key):
        uid = s3.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
        parts = []
        for n, data in enumerate([b"a" * (5 * MiB), b"tail"], start=1):
            e = s3.upload_part(Bucket=b, Key=key, UploadId=uid, PartNumber=n, Body=data)["ETag"]
            parts.append({"PartNumber": n, "ETag": e})
        return uid, {"Parts": parts}

    uid, mp = upload("raced")
    fails("PreconditionFailed", s3.complete_multipart_upload, Bucket=b, Key="raced", UploadId=uid,
          MultipartUpload=mp, IfNoneMatch="*")
    assert body(s3, b, "raced") == raced
    etag = s3.head_object(Bucket=b, Key="raced")["ETag"]
    s3.complete_multipart_upload(Bucket=b, Key="raced", UploadId=uid, MultipartUpload=mp, IfMatch=etag)
    assert s3.head_object(Bucket=b, Key="raced")["ContentLength"] == 5 * MiB + 4
    uid, mp = upload("fresh")
    s3.complete_multipart_upload(Bucket=b, Key="fresh", UploadId=uid, MultipartUpload=mp, IfNoneMatch="*")
    assert s3.head_object(Bucket=b, Key="fresh")["ContentLength"] == 5 * MiB + 4


def object_attributes(endpoint, ak, sk):
    """GetObjectAttributes on a plain and a multipart object, with part paging."""
    s3 = client(endpoint, ak, sk)
    b = "attr-bucket"
    s3.create_bucket(Bucket=b)
    put = s3.put_object(Bucket=b, Key="plain", Body=b"hello", ChecksumAlgorithm="SHA256")
    all_attrs = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    a = s3.get_object_attributes(Bucket=b, Key="plain", ObjectAttributes=all_attrs)
    # S3 sends this ETag without quotes; s3s always quotes it: compare the values.
    assert a["ETag"].strip('"') == put["ETag"].strip('"'), a
    assert a["ObjectSize"] == 5 and a["StorageClass"] == "STANDARD", a
    assert a["Checksum"]["ChecksumSHA256"] == put["ChecksumSHA256"], a
    assert "ObjectParts" not in a, a
    assert "LastModified" in a
    only = s3.get_object_attributes(Bucket=b, Key="plain", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == 5 and "ETag" not in only and "StorageClass" not in only, only

    uid = s3.create_multipart_upload(Bucket=b, Key="multi")["UploadId"]
    parts = []
    datas = [b"x" * (5 * MiB), b"y" * (5 * MiB), b"z" * 100]
    for n, data in enumerate(datas, start=1):
        e = s3.upload_part(Bucket=b, Key="multi", UploadId=uid, PartNumber=n, Body=data)["ETag"]
        parts.append({"PartNumber": n, "ETag": e})
    done = s3.complete_multipart_upload(Bucket=b, Key="multi", UploadId=uid,
                                        MultipartUpload={"Parts": parts})
    a = s3.get_object_attributes(Bucket=b, Key="multi", ObjectAttributes=all_attrs, MaxParts=2)
    assert a["ETag"].strip('"') == done["ETag"].strip('"'), a
    assert a["ObjectSize"] == 10 * MiB + 100, a
    p = a["ObjectParts"]
    assert p["TotalPartsCount"] == 3 and p["IsTruncated"] and p["NextPartNumberMarker"] == 2, p
    assert [(x["PartNumber"], x["Size"]) for x in p["Parts"]] == [(1, 5 * MiB), (2, 5 * MiB)], p
    a = s3.get_object_attributes(Bucket=b, Key="multi", ObjectAttributes=["ObjectParts"],
                                 PartNumberMarker=2)
    p = a["ObjectParts"]
    assert not p["IsTruncated"] and [(x["PartNumber"], x["Size"]) for x in p["Parts"]] == [(3, 100)], p

    fails("NoSuchKey", s3.get_object_attributes, Bucket=b, Key="nope", ObjectAttributes=["ETag"])
    fails("NoSuchBucket", s3.get_object_attributes, Bucket="no-such-bucket-x", Key="k",
          ObjectAttributes=["ETag"])
