"""Signature and authorization scenarios (imported by s3_checks.py): identities from
s3.json (anonymous, wrong secret, unknown key, scoped readers and writers) and
`STREAMING-AWS4-HMAC-SHA256-PAYLOAD` bodies signed chunk by chunk, as minio-go/restic
send them over plain HTTP.
"""

import base64
import datetime
import hashlib

from s3_checks import body, client, fails


# ---------------------------------------------------------------- auth

def auth(endpoint, ak, sk):
    admin = client(endpoint, ak, sk)
    admin.create_bucket(Bucket="shared")
    admin.create_bucket(Bucket="public")
    admin.create_bucket(Bucket="private")
    admin.put_object(Bucket="shared", Key="doc.txt", Body=b"doc")
    admin.put_object(Bucket="public", Key="open.txt", Body=b"open")
    admin.put_object(Bucket="private", Key="secret.txt", Body=b"secret")

    anon = client(endpoint, None, None, unsigned=True)
    assert body(anon, "public", "open.txt") == b"open"
    anon.list_objects_v2(Bucket="public")
    fails("AccessDenied", anon.get_object, Bucket="private", Key="secret.txt")
    fails("AccessDenied", anon.put_object, Bucket="public", Key="x", Body=b"x")
    fails("AccessDenied", anon.list_objects_v2, Bucket="private")
    fails("AccessDenied", anon.list_buckets)
    fails("AccessDenied", anon.create_bucket, Bucket="anon-bucket")

    wrong = client(endpoint, ak, sk + "x")
    for fn, kw in [
        (wrong.get_object, dict(Bucket="private", Key="secret.txt")),
        (wrong.put_object, dict(Bucket="private", Key="k", Body=b"x")),
        (wrong.list_objects_v2, dict(Bucket="private")),
        (wrong.list_buckets, {}),
        (wrong.delete_object, dict(Bucket="private", Key="secret.txt")),
        (wrong.create_multipart_upload, dict(Bucket="private", Key="m")),
    ]:
        fails("SignatureDoesNotMatch", fn, **kw)
    unknown = client(endpoint, "NOSUCHKEY", "whatever")
    fails("InvalidAccessKeyId", unknown.get_object, Bucket="private", Key="secret.txt")
    fails("InvalidAccessKeyId", unknown.list_buckets)
    assert body(admin, "private", "secret.txt") == b"secret"

    reader = client(endpoint, "READERKEY", "readersecret")
    assert body(reader, "shared", "doc.txt") == b"doc"
    reader.list_objects_v2(Bucket="shared")
    reader.head_bucket(Bucket="shared")
    assert [x["Name"] for x in reader.list_buckets()["Buckets"]] == ["shared"]
    fails("AccessDenied", reader.put_object, Bucket="shared", Key="doc.txt", Body=b"x")
    fails("AccessDenied", reader.delete_object, Bucket="shared", Key="doc.txt")
    fails("AccessDenied", reader.get_object, Bucket="private", Key="secret.txt")
    fails("AccessDenied", reader.delete_bucket, Bucket="shared")
    fails("AccessDenied", reader.create_bucket, Bucket="reader-bucket")

    up = client(endpoint, "UPKEY", "upsecret")
    up.put_object(Bucket="shared", Key="up/file", Body=b"mine")
    assert body(up, "shared", "up/file") == b"mine"
    fails("AccessDenied", up.put_object, Bucket="shared", Key="elsewhere", Body=b"x")
    fails("AccessDenied", up.get_object, Bucket="shared", Key="doc.txt")
    up.list_objects_v2(Bucket="shared", Prefix="up/")
    fails("AccessDenied", up.list_objects_v2, Bucket="shared")
    fails("AccessDenied", up.copy_object, Bucket="shared", Key="up/copy",
          CopySource={"Bucket": "shared", "Key": "doc.txt"})
    up.copy_object(Bucket="shared", Key="up/copy2", CopySource={"Bucket": "shared", "Key": "up/file"})
    r = up.delete_objects(Bucket="shared", Delete={"Objects": [{"Key": "up/copy2"}, {"Key": "doc.txt"}]})
    assert [d["Key"] for d in r["Deleted"]] == ["up/copy2"]
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("doc.txt", "AccessDenied")]
    assert body(admin, "shared", "doc.txt") == b"doc"
    # Multipart is a write: allowed under up/ only.
    uid = up.create_multipart_upload(Bucket="shared", Key="up/mp")["UploadId"]
    e = up.upload_part(Bucket="shared", Key="up/mp", UploadId=uid, PartNumber=1, Body=b"p")["ETag"]
    up.complete_multipart_upload(Bucket="shared", Key="up/mp", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    fails("AccessDenied", up.create_multipart_upload, Bucket="shared", Key="mp")


# ---------------------------------------------------------------- streaming signatures

def sigv4_stream_put(endpoint, ak, sk, bucket, key, chunks, tamper=False, md5=True,
                     trailer=None, signed_chunks=True):
    """PUT with an aws-chunked body: `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (as minio-go and
    restic send over plain HTTP); with `trailer=(name, value)` the `-TRAILER` variant, or
    with `signed_chunks=False` `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (as AWS SDKs send
    checksums). Returns (status, body)."""
    import hmac
    import http.client
    import urllib.parse

    host = urllib.parse.urlparse(endpoint).netloc
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{date}/us-east-1/s3/aws4_request"

    def h(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing = h(h(h(h(("AWS4" + sk).encode(), date), "us-east-1"), "s3"), "aws4_request")
    sha = lambda b: hashlib.sha256(b).hexdigest()
    decoded = sum(len(c) for c in chunks)

    def frame(data, sig):
        if not signed_chunks:
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"
        return f"{len(data):x};chunk-signature={sig}\r\n".encode() + data + b"\r\n"

    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    if trailer:
        mode += "-TRAILER"
    if not signed_chunks:
        mode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    trailer_block = b""
    if trailer:
        trailer_block = f"{trailer[0]}:{trailer[1]}\r\n".encode()
        if signed_chunks:
            trailer_block += b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n"
    # Every frame has a 64-hex signature, so the encoded length is known up front.
    total = sum(len(frame(c, "0" * 64)) for c in chunks + [b""])
    if trailer:
        # The last frame's data CRLF is replaced by the trailers and a blank line.
        total += len(trailer_block)
    headers = {
        "content-encoding": "aws-chunked",
        "content-length": str(total),
        "host": host,
        "x-amz-content-sha256": mode,
        "x-amz-date": amz_date,
        "x-amz-decoded-content-length": str(decoded),
    }
    if trailer:
        headers["x-amz-trailer"] = trailer[0]
    if md5:
        headers["content-md5"] = base64.b64encode(hashlib.md5(b"".join(chunks)).digest()).decode()
    names = sorted(headers)
    path = "/" + bucket + "/" + urllib.parse.quote(key, safe="/~")
    canonical = "\n".join(
        ["PUT", path, ""] + [f"{n}:{headers[n]}" for n in names] + ["", ";".join(names), mode]
    )
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha(canonical.encode())])
    prev = hmac.new(signing, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={';'.join(names)}, Signature={prev}"
    )
    payload = b""
    for c in chunks + [b""]:
        csts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, sha(b""), sha(c)])
        prev = hmac.new(signing, csts.encode(), hashlib.sha256).hexdigest()
        if tamper and c:
            c = b"X" + c[1:]
        payload += frame(c, prev)
    if trailer:
        payload = payload[:-2] + f"{trailer[0]}:{trailer[1]}\r\n".encode()
        if signed_chunks:
            canonical_trailer = f"{trailer[0]}:{trailer[1]}\n".encode()
            tsts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev, sha(canonical_trailer)])
            tsig = hmac.new(signing, tsts.encode(), hashlib.sha256).hexdigest()
            payload += f"x-amz-trailer-signature:{tsig}\r\n".encode()
        payload += b"\r\n"
    assert len(payload) == total, (len(payload), total)
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.request("PUT", path, body=payload, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


def streaming(endpoint, ak, sk, verifies):
    s3 = client(endpoint, ak, sk)
    b = "stream-bucket"
    s3.create_bucket(Bucket=b)
    chunks = [bytes([i]) * (64 * 1024) for i in range(5)] + [b"tail"]
    st, out = sigv4_stream_put(endpoint, ak, sk, b, "data/pack 1", chunks)
    assert st == 200, (st, out)
    got = body(s3, b, "data/pack 1")
    assert got == b"".join(chunks)
    assert s3.head_object(Bucket=b, Key="data/pack 1")["ETag"] == '"%s"' % hashlib.md5(got).hexdigest()
    st, out = sigv4_stream_put(endpoint, ak, sk, b, "data/empty", [])
    assert st == 200, (st, out)
    assert body(s3, b, "data/empty") == b""
    st, out = sigv4_stream_put(endpoint, ak, sk, b, "data/tampered", chunks, tamper=True, md5=False)
    if verifies:
        assert st == 403 and b"SignatureDoesNotMatch" in out, (st, out)
        fails("404", s3.head_object, Bucket=b, Key="data/tampered")
    else:
        assert st == 200, (st, out)  # open mode verifies no signature
    if verifies:
        st, out = sigv4_stream_put(endpoint, ak, sk + "x", b, "data/wrong-secret", chunks)
        assert st == 403 and b"SignatureDoesNotMatch" in out, (st, out)
    else:
        # Content-MD5 is still checked against the decoded body.
        st, out = sigv4_stream_put(endpoint, ak, sk, b, "data/md5", chunks, tamper=True)
        assert st == 400 and b"BadDigest" in out, (st, out)
        fails("404", s3.head_object, Bucket=b, Key="data/md5")
