"""Details S3 clients notice (imported by s3_checks.py): unicode user metadata as
RFC 2047 encoded words, ListObjects with max-keys=0, an empty delimiter that is not
echoed, the owner in ListObjectsV2 only with fetch-owner, and Range headers S3
ignores (signed, so the gateway must verify them before it drops them)."""

from email.header import decode_header

from s3_checks import client


def decoded(v):
    """A header value with its RFC 2047 encoded words decoded."""
    out = ""
    for part, charset in decode_header(v):
        out += part.decode(charset or "ascii") if isinstance(part, bytes) else part
    return out


def details(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    b = "detail-bucket"
    s3.create_bucket(Bucket=b)

    # Non-ASCII metadata travels as encoded words and comes back as S3 sends it.
    text = "héllo wörld ☃"
    sent = "=?UTF-8?B?aMOpbGxvIHfDtnJsZCDimIM=?="
    assert decoded(sent) == text
    s3.put_object(Bucket=b, Key="meta", Body=b"x", Metadata={"greeting": sent, "plain": "ascii"})
    for got in (s3.head_object(Bucket=b, Key="meta")["Metadata"],
                s3.get_object(Bucket=b, Key="meta")["Metadata"]):
        assert decoded(got["greeting"]) == text, got
        assert got["plain"] == "ascii", got
    s3.copy_object(Bucket=b, Key="meta-copy", CopySource={"Bucket": b, "Key": "meta"})
    got = s3.head_object(Bucket=b, Key="meta-copy")["Metadata"]
    assert decoded(got["greeting"]) == text, got

    for k in ("a/1", "a/2", "b"):
        s3.put_object(Bucket=b, Key=k, Body=b"k")

    # max-keys=0: nothing, and not truncated.
    r = s3.list_objects_v2(Bucket=b, MaxKeys=0)
    assert r["KeyCount"] == 0 and not r["IsTruncated"] and "Contents" not in r, r
    r = s3.list_objects(Bucket=b, MaxKeys=0)
    assert not r["IsTruncated"] and "Contents" not in r, r

    # An empty delimiter is no delimiter, and is not echoed.
    r = s3.list_objects_v2(Bucket=b, Delimiter="")
    assert "Delimiter" not in r and "CommonPrefixes" not in r, r
    assert [o["Key"] for o in r["Contents"]] == ["a/1", "a/2", "b", "meta", "meta-copy"], r
    r = s3.list_objects(Bucket=b, Delimiter="")
    assert "Delimiter" not in r, r
    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert r["Delimiter"] == "/" and r["CommonPrefixes"] == [{"Prefix": "a/"}], r

    # ListObjectsV2 names owners only when asked; v1 always does.
    r = s3.list_objects_v2(Bucket=b)
    assert all("Owner" not in o for o in r["Contents"]), r
    r = s3.list_objects_v2(Bucket=b, FetchOwner=True)
    assert all("ID" in o["Owner"] for o in r["Contents"]), r
    r = s3.list_objects(Bucket=b)
    assert all("ID" in o["Owner"] for o in r["Contents"]), r

    # Tagging an untagged object keeps its metadata (it once cleared every attribute).
    s3.put_object(Bucket=b, Key="tagme", Body=b"t", Metadata={"keep": "me"}, ContentType="text/x-kept")
    s3.put_object_tagging(Bucket=b, Key="tagme", Tagging={"TagSet": [{"Key": "a", "Value": "1"}]})
    h = s3.head_object(Bucket=b, Key="tagme")
    assert h["Metadata"] == {"keep": "me"} and h["ContentType"] == "text/x-kept", h
    s3.delete_object_tagging(Bucket=b, Key="tagme")
    h = s3.head_object(Bucket=b, Key="tagme")
    assert h["Metadata"] == {"keep": "me"}, h

    # Presigned URLs: up to 7 days, as in S3.
    import urllib.error
    import urllib.request

    def fetch(url):
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    ok = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "b"}, ExpiresIn=604800)
    assert fetch(ok) == (200, b"k"), fetch(ok)
    long = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "b"},
                                     ExpiresIn=10 * 365 * 86400)
    status, text = fetch(long)
    assert status == 400 and b"AuthorizationQueryParametersError" in text, (status, text)

    # Ranges S3 ignores (a reversed one, several, garbage) serve the whole object with
    # 200; an end past the object is clamped (206). boto3 signs the Range header.
    body = bytes(range(256)) * 4
    s3.put_object(Bucket=b, Key="ranged", Body=body)
    for ignored in ("bytes=100-50", "bytes=0-1,5-6", "bytes=x"):
        r = s3.get_object(Bucket=b, Key="ranged", Range=ignored)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200, (ignored, r)
        assert r["Body"].read() == body, ignored
        h = s3.head_object(Bucket=b, Key="ranged", Range=ignored)
        assert h["ContentLength"] == len(body), (ignored, h)
    r = s3.get_object(Bucket=b, Key="ranged", Range="bytes=1000-99999")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, r
    assert r["ContentRange"] == "bytes 1000-1023/1024", r
    assert r["Body"].read() == body[1000:]
