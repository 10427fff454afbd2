"""Bucket versioning (imported by s3_checks.py): version lifecycles, delete markers,
the null version of suspended buckets, versioned copies, tagging and DeleteObjects by
version, and ListObjectVersions paging over 2,000 versions of three keys."""

import concurrent.futures

from botocore.exceptions import ClientError

from s3_checks import body, client, fails

MiB = 1 << 20


def versions_of(s3, b, **kw):
    """Every (key, version id, is latest, is delete marker) of the bucket, in order."""
    out = []
    kw = dict(kw)
    while True:
        r = s3.list_object_versions(Bucket=b, **kw)
        items = [(v["Key"], v["VersionId"], v["IsLatest"], False, v["LastModified"])
                 for v in r.get("Versions", [])]
        items += [(m["Key"], m["VersionId"], m["IsLatest"], True, m["LastModified"])
                  for m in r.get("DeleteMarkers", [])]
        # Versions and markers come in two lists: this keeps each page's versions
        # before its markers (tests compare per key or as sets where that matters).
        out.extend(items)
        if not r["IsTruncated"]:
            break
        kw["KeyMarker"] = r["NextKeyMarker"]
        kw["VersionIdMarker"] = r["NextVersionIdMarker"]
    return [(k, v, latest, marker) for k, v, latest, marker, _ in out]


def status(e):
    return e.response["ResponseMetadata"]["HTTPStatusCode"]


def versioning(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    b = "ver-bucket"
    s3.create_bucket(Bucket=b)
    assert "Status" not in s3.get_bucket_versioning(Bucket=b)
    r = s3.put_object(Bucket=b, Key="k", Body=b"v0")
    assert "VersionId" not in r, r
    fails("MalformedXML", s3.put_bucket_versioning, Bucket=b,
          VersioningConfiguration={"Status": "Bogus"})
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"

    v1 = s3.put_object(Bucket=b, Key="k", Body=b"v1")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"v2")["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2), (v1, v2)
    g = s3.get_object(Bucket=b, Key="k")
    assert g["Body"].read() == b"v2" and g["VersionId"] == v2
    assert body(s3, b, "k", VersionId=v1) == b"v1"
    assert body(s3, b, "k", VersionId="null") == b"v0"
    assert s3.head_object(Bucket=b, Key="k", VersionId=v1)["ContentLength"] == 2
    fails("NoSuchVersion", s3.get_object, Bucket=b, Key="k", VersionId="0" * 24)
    fails("InvalidArgument", s3.get_object, Bucket=b, Key="k", VersionId="not-a-version")
    assert versions_of(s3, b) == [("k", v2, True, False), ("k", v1, False, False),
                                  ("k", "null", False, False)], versions_of(s3, b)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b).get("Contents", [])]
    assert keys == ["k"], keys

    # A delete without a version id adds a delete marker.
    d = s3.delete_object(Bucket=b, Key="k")
    assert d["DeleteMarker"] is True, d
    m1 = d["VersionId"]
    try:
        s3.get_object(Bucket=b, Key="k")
        raise AssertionError("GET of a deleted key succeeded")
    except ClientError as e:
        assert status(e) == 404 and e.response["Error"]["Code"] == "NoSuchKey", e.response
        h = e.response["ResponseMetadata"]["HTTPHeaders"]
        assert h.get("x-amz-delete-marker") == "true" and h.get("x-amz-version-id") == m1, h
    fails("404", s3.head_object, Bucket=b, Key="k")
    try:
        s3.get_object(Bucket=b, Key="k", VersionId=m1)
        raise AssertionError("GET of a delete marker succeeded")
    except ClientError as e:
        assert status(e) == 405, e.response
        assert e.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-delete-marker") == "true"
    assert "Contents" not in s3.list_objects_v2(Bucket=b)
    assert versions_of(s3, b) == [("k", v2, False, False), ("k", v1, False, False),
                                  ("k", "null", False, False), ("k", m1, True, True)]

    # Deleting the marker brings the newest version back; deleting versions by id
    # removes them for good.
    d = s3.delete_object(Bucket=b, Key="k", VersionId=m1)
    assert d["DeleteMarker"] is True and d["VersionId"] == m1, d
    assert body(s3, b, "k") == b"v2"
    s3.delete_object(Bucket=b, Key="k", VersionId=v2)
    g = s3.get_object(Bucket=b, Key="k")
    assert g["Body"].read() == b"v1" and g["VersionId"] == v1
    s3.delete_object(Bucket=b, Key="k", VersionId="null")
    assert versions_of(s3, b) == [("k", v1, True, False)]
    fails("NoSuchVersion", s3.get_object, Bucket=b, Key="k", VersionId="null")

    # Suspended: writes replace the one null version.
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Suspended"
    assert s3.put_object(Bucket=b, Key="k", Body=b"s1")["VersionId"] == "null"
    assert s3.put_object(Bucket=b, Key="k", Body=b"s2")["VersionId"] == "null"
    assert versions_of(s3, b) == [("k", "null", True, False), ("k", v1, False, False)]
    assert body(s3, b, "k") == b"s2"
    d = s3.delete_object(Bucket=b, Key="k")
    assert d["DeleteMarker"] is True and d["VersionId"] == "null", d
    assert versions_of(s3, b) == [("k", v1, False, False), ("k", "null", True, True)]

    # Copies from a version; tagging by version.
    c = s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "k", "VersionId": v1})
    assert c["CopySourceVersionId"] == v1 and c["VersionId"] == "null", c
    assert body(s3, b, "copy") == b"v1"
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_tagging(Bucket=b, Key="k", VersionId=v1,
                          Tagging={"TagSet": [{"Key": "old", "Value": "yes"}]})
    t = s3.get_object_tagging(Bucket=b, Key="k", VersionId=v1)
    assert t["TagSet"] == [{"Key": "old", "Value": "yes"}] and t["VersionId"] == v1, t
    assert s3.get_object_acl(Bucket=b, Key="k", VersionId=v1)["Grants"]
    fails("NoSuchVersion", s3.get_object_acl, Bucket=b, Key="k", VersionId="1" * 24)
    a = s3.get_object_attributes(Bucket=b, Key="k", VersionId=v1, ObjectAttributes=["ObjectSize"])
    assert a["ObjectSize"] == 2 and a["VersionId"] == v1, a

    # DeleteObjects: markers for plain keys, versions by id.
    s3.put_object(Bucket=b, Key="d1", Body=b"1")
    d2 = s3.put_object(Bucket=b, Key="d2", Body=b"2")["VersionId"]
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "d1"},
                                                       {"Key": "d2", "VersionId": d2}]})
    got = {x["Key"]: x for x in r["Deleted"]}
    assert got["d1"]["DeleteMarker"] is True and got["d1"]["DeleteMarkerVersionId"], got
    assert got["d2"]["VersionId"] == d2 and not got["d2"].get("DeleteMarker"), got
    assert [v for v in versions_of(s3, b) if v[0] == "d2"] == []
    d1 = sorted((v[3], v[2]) for v in versions_of(s3, b) if v[0] == "d1")
    assert d1 == [(False, False), (True, True)], d1  # the version, then the latest marker

    # A completed multipart upload is a new version.
    uid = s3.create_multipart_upload(Bucket=b, Key="big")["UploadId"]
    e = s3.upload_part(Bucket=b, Key="big", UploadId=uid, PartNumber=1, Body=b"x" * 100)["ETag"]
    done = s3.complete_multipart_upload(Bucket=b, Key="big", UploadId=uid,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert done["VersionId"] and done["VersionId"] != "null", done

    # Conditional writes still hold in a versioned bucket.
    fails("PreconditionFailed", s3.put_object, Bucket=b, Key="big", Body=b"x", IfNoneMatch="*")

    # A bucket with versions left is not empty.
    fails("BucketNotEmpty", s3.delete_bucket, Bucket=b)


def version_paging(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    b = "ver-paging"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    counts = {"a/x": 700, "a/y": 700, "b": 600}

    def write(key):
        return [s3.put_object(Bucket=b, Key=key, Body=f"{key}{n}".encode())["VersionId"]
                for n in range(counts[key])]

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        written = dict(zip(counts, pool.map(write, counts)))
    s3.delete_object(Bucket=b, Key="b")
    for page in (1, 7, 250, 1000):
        got = versions_of(s3, b, MaxKeys=page)
        assert len(got) == 2001, (page, len(got))
        for key, ids in written.items():
            vers = [g for g in got if g[0] == key and not g[3]]
            marks = [g for g in got if g[0] == key and g[3]]
            assert [g[1] for g in vers] == list(reversed(ids)), (page, key)
            if key == "b":
                # The delete marker is the latest; every version is older.
                assert len(marks) == 1 and marks[0][2], (page, marks)
                assert not any(g[2] for g in vers), page
            else:
                assert marks == [], (page, marks)
                assert [g[2] for g in vers] == [True] + [False] * (len(ids) - 1), (page, key)
        assert [g[0] for g in got] == sorted(g[0] for g in got), page
    # Prefix and delimiter.
    r = s3.list_object_versions(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in r.get("CommonPrefixes", [])] == ["a/"], r.get("CommonPrefixes")
    assert {v["Key"] for v in r.get("Versions", [])} == {"b"}
    got = versions_of(s3, b, Prefix="a/y", MaxKeys=300)
    assert len(got) == 700 and {g[0] for g in got} == {"a/y"}
    fails("InvalidArgument", s3.list_object_versions, Bucket=b, VersionIdMarker=written["b"][0])
