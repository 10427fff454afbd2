"""What current SDKs and tools rely on beyond the basics (imported by s3_checks.py):
additional checksums (x-amz-checksum-* on PutObject and UploadPart verified, BadDigest
with nothing stored, echoed on GET/HEAD; COMPOSITE and FULL_OBJECT multipart checksums;
checksums in aws-chunked trailers, signed and unsigned), virtual-hosted-style
addressing, and browser POST-form uploads with a signed policy.
"""

import base64
import hashlib
import zlib

from auth_checks import sigv4_stream_put
from s3_checks import body, client, fails

MiB = 1 << 20


def b64(raw):
    return base64.b64encode(raw).decode()


def crc32(data):
    return zlib.crc32(data).to_bytes(4, "big")


def checksums(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    b = "sum-bucket"
    s3.create_bucket(Bucket=b)
    data = b"checksummed bytes " * 1000

    # Single PUT: the SDK computes the header; the answer and GET/HEAD echo it.
    r = s3.put_object(Bucket=b, Key="sha", Body=data, ChecksumAlgorithm="SHA256")
    want = b64(hashlib.sha256(data).digest())
    assert r["ChecksumSHA256"] == want, r
    h = s3.head_object(Bucket=b, Key="sha", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == want and h["ChecksumType"] == "FULL_OBJECT", h
    # botocore validates the echoed checksum against the body it reads.
    g = s3.get_object(Bucket=b, Key="sha", ChecksumMode="ENABLED")
    assert g["ChecksumSHA256"] == want
    assert g["Body"].read() == data
    # Not asked for, or a range: no checksum.
    assert "ChecksumSHA256" not in s3.head_object(Bucket=b, Key="sha")
    g = s3.get_object(Bucket=b, Key="sha", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in g and g["Body"].read() == data[:10]

    # A wrong value: BadDigest and nothing stored (an older object stays as it was).
    r = s3.put_object(Bucket=b, Key="crc", Body=data, ChecksumCRC32=b64(crc32(data)))
    assert r["ChecksumCRC32"] == b64(crc32(data))
    fails("BadDigest", s3.put_object, Bucket=b, Key="crc", Body=b"other", ChecksumCRC32=b64(crc32(data)))
    assert body(s3, b, "crc") == data
    fails("BadDigest", s3.put_object, Bucket=b, Key="never", Body=data, ChecksumSHA1=b64(b"\0" * 20))
    fails("404", s3.head_object, Bucket=b, Key="never")
    # A value that is not a checksum at all.
    fails("InvalidRequest", s3.put_object, Bucket=b, Key="never", Body=data, ChecksumCRC32="abc")
    # Copies keep the checksum of the bytes.
    c = s3.copy_object(Bucket=b, Key="crc-copy", CopySource={"Bucket": b, "Key": "crc"})
    assert c["CopyObjectResult"]["ChecksumCRC32"] == b64(crc32(data)), c
    h = s3.head_object(Bucket=b, Key="crc-copy", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == b64(crc32(data))
    # A copy that asks for another algorithm gets that one, computed over the bytes.
    c = s3.copy_object(Bucket=b, Key="crc-copy", CopySource={"Bucket": b, "Key": "crc"},
                       ChecksumAlgorithm="SHA256")
    assert c["CopyObjectResult"]["ChecksumSHA256"] == want, c
    assert "ChecksumCRC32" not in c["CopyObjectResult"], c
    h = s3.head_object(Bucket=b, Key="crc-copy", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == want and "ChecksumCRC32" not in h, h
    assert h["ChecksumType"] == "FULL_OBJECT", h
    fails("InvalidRequest", s3.copy_object, Bucket=b, Key="crc-copy", CopySource={"Bucket": b, "Key": "crc"},
          ChecksumAlgorithm="MD5")

    # Multipart, COMPOSITE CRC32: each part's checksum is verified and echoed, the object
    # gets crc32(part crc32s)-N.
    parts = [bytes([7]) * (5 * MiB), b"last part"]
    uid = s3.create_multipart_upload(Bucket=b, Key="mp", ChecksumAlgorithm="CRC32")["UploadId"]
    done = []
    for n, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=b, Key="mp", UploadId=uid, PartNumber=n, Body=p, ChecksumAlgorithm="CRC32")
        assert r["ChecksumCRC32"] == b64(crc32(p)), r
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    fails("BadDigest", s3.upload_part, Bucket=b, Key="mp", UploadId=uid, PartNumber=3, Body=b"x",
          ChecksumCRC32=b64(crc32(b"y")))
    lp = s3.list_parts(Bucket=b, Key="mp", UploadId=uid)
    assert [p.get("ChecksumCRC32") for p in lp["Parts"]] == [b64(crc32(p)) for p in parts], lp
    bad = [dict(done[0]), done[1]]
    bad[0]["ChecksumCRC32"] = b64(crc32(b"nope"))
    fails("InvalidPart", s3.complete_multipart_upload, Bucket=b, Key="mp", UploadId=uid,
          MultipartUpload={"Parts": bad})
    r = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=uid, MultipartUpload={"Parts": done})
    composite = b64(crc32(b"".join(crc32(p) for p in parts))) + "-2"
    assert r["ChecksumCRC32"] == composite, r
    h = s3.head_object(Bucket=b, Key="mp", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == composite and h["ChecksumType"] == "COMPOSITE", h
    assert body(s3, b, "mp", ChecksumMode="ENABLED") == b"".join(parts)
    # Copying the two-chunk object with another algorithm hashes across its chunks.
    c = s3.copy_object(Bucket=b, Key="mp-copy", CopySource={"Bucket": b, "Key": "mp"}, ChecksumAlgorithm="SHA1")
    assert c["CopyObjectResult"]["ChecksumSHA1"] == b64(hashlib.sha1(b"".join(parts)).digest()), c

    # Multipart, FULL_OBJECT CRC32: the part CRCs combine into the whole object's CRC.
    uid = s3.create_multipart_upload(Bucket=b, Key="full", ChecksumAlgorithm="CRC32",
                                     ChecksumType="FULL_OBJECT")["UploadId"]
    done = []
    for n, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=b, Key="full", UploadId=uid, PartNumber=n, Body=p, ChecksumAlgorithm="CRC32")
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    whole = b64(crc32(b"".join(parts)))
    r = s3.complete_multipart_upload(Bucket=b, Key="full", UploadId=uid, MultipartUpload={"Parts": done},
                                     ChecksumCRC32=whole, ChecksumType="FULL_OBJECT")
    assert r["ChecksumCRC32"] == whole, r
    g = s3.get_object(Bucket=b, Key="full", ChecksumMode="ENABLED")
    assert g["ChecksumCRC32"] == whole and g["ChecksumType"] == "FULL_OBJECT", g
    assert g["Body"].read() == b"".join(parts)
    fails("InvalidRequest", s3.create_multipart_upload, Bucket=b, Key="x", ChecksumAlgorithm="SHA256",
          ChecksumType="FULL_OBJECT")


def trailers(endpoint, ak, sk):
    """Checksums sent after the body, in aws-chunked trailers."""
    s3 = client(endpoint, ak, sk)
    b = "trailer-bucket"
    s3.create_bucket(Bucket=b)
    chunks = [bytes([i]) * (64 * 1024) for i in range(3)] + [b"end"]
    data = b"".join(chunks)
    good = ("x-amz-checksum-crc32", b64(crc32(data)))
    wrong = ("x-amz-checksum-crc32", b64(crc32(b"something else")))
    for signed in (True, False):
        key = f"t-{signed}"
        st, out = sigv4_stream_put(endpoint, ak, sk, b, key, chunks, md5=False, trailer=good,
                                   signed_chunks=signed)
        assert st == 200, (signed, st, out)
        assert body(s3, b, key) == data
        h = s3.head_object(Bucket=b, Key=key, ChecksumMode="ENABLED")
        assert h["ChecksumCRC32"] == good[1], h
        st, out = sigv4_stream_put(endpoint, ak, sk, b, key + "-bad", chunks, md5=False, trailer=wrong,
                                   signed_chunks=signed)
        assert st == 400 and b"BadDigest" in out, (signed, st, out)
        fails("404", s3.head_object, Bucket=b, Key=key + "-bad")


def virtual_host(endpoint, ak, sk):
    """`<bucket>.s3.kelp.test` requests (the gateway runs with -s3.domainName=s3.kelp.test),
    SigV4-signed over the virtual host, next to path-style requests on 127.0.0.1."""
    import socket
    import urllib.parse

    from botocore.client import Config

    import boto3

    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and (host == "s3.kelp.test" or host.endswith(".s3.kelp.test")):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = resolve
    port = urllib.parse.urlparse(endpoint).port
    vs3 = boto3.client(
        "s3",
        endpoint_url=f"http://s3.kelp.test:{port}",
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}),
    )
    path = client(endpoint, ak, sk)
    vs3.create_bucket(Bucket="vhost-bucket")
    vs3.put_object(Bucket="vhost-bucket", Key="dir/a b.txt", Body=b"virtual")
    assert body(path, "vhost-bucket", "dir/a b.txt") == b"virtual"
    path.put_object(Bucket="vhost-bucket", Key="p.txt", Body=b"path")
    assert body(vs3, "vhost-bucket", "p.txt") == b"path"
    keys = [o["Key"] for o in vs3.list_objects_v2(Bucket="vhost-bucket")["Contents"]]
    assert keys == ["dir/a b.txt", "p.txt"], keys
    assert "vhost-bucket" in [b["Name"] for b in vs3.list_buckets()["Buckets"]]
    fails("NoSuchKey", vs3.get_object, Bucket="vhost-bucket", Key="missing")
    vs3.delete_object(Bucket="vhost-bucket", Key="p.txt")
    fails("404", path.head_object, Bucket="vhost-bucket", Key="p.txt")


def post_form(endpoint, ak, sk):
    """A presigned POST (browser form upload): the signed policy is enforced."""
    import urllib.error
    import urllib.request
    import uuid

    s3 = client(endpoint, ak, sk)
    b = "post-bucket"
    s3.create_bucket(Bucket=b)

    def post(fields, data, name="hello.txt"):
        bnd = uuid.uuid4().hex
        body = b""
        for k, v in fields.items():
            body += f"--{bnd}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
        body += (f"--{bnd}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                 "Content-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{bnd}--\r\n".encode()
        req = urllib.request.Request(f"{endpoint}/{b}", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={bnd}"})
        try:
            r = urllib.request.urlopen(req, timeout=30)
            return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    p = s3.generate_presigned_post(b, "forms/upload.txt", Conditions=[["content-length-range", 1, 1000]])
    st, out = post(p["fields"], b"posted bytes")
    assert st == 204, (st, out)
    assert body(s3, b, "forms/upload.txt") == b"posted bytes"
    # Over the policy's size range: refused, nothing stored.
    st, out = post(p["fields"], b"x" * 2000)
    assert st == 400, (st, out)
    assert body(s3, b, "forms/upload.txt") == b"posted bytes"
    # A key the policy does not cover, or a forged signature: refused.
    f = dict(p["fields"], key="forms/other.txt")
    st, out = post(f, b"sneaky")
    assert st in (400, 403), (st, out)
    f = dict(p["fields"], **{"x-amz-signature": "0" * 64})
    st, out = post(f, b"sneaky")
    assert st == 403, (st, out)
    fails("404", s3.head_object, Bucket=b, Key="forms/other.txt")
