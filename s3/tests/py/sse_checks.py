"""Server-side encryption driven by boto3: SSE-C (ranges across 8 MiB chunks, wrong
and missing keys, copies between keys, multipart), SSE-S3, SSE-KMS (named keys,
contexts, unknown keys), default bucket encryption, and a scan of the volume
server's files for plaintext of encrypted objects."""

import base64
import hashlib
import os

from botocore.exceptions import ClientError

from s3_checks import client, fails

MIB = 1 << 20


def new_key():
    """A 32-byte customer key as boto3 takes it (a str, sent as its UTF-8 bytes)."""
    return os.urandom(16).hex()


def ssec(key):
    """The SSECustomer* arguments of a key."""
    return {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": key,
    }


def copy_ssec(key):
    return {
        "CopySourceSSECustomerAlgorithm": "AES256",
        "CopySourceSSECustomerKey": key,
    }


def status_of(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    return 200, "ok"


def read(s3, bucket, key, rng=None, **kw):
    if rng:
        kw["Range"] = rng
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def sse_c(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    b = "ssec"
    s3.create_bucket(Bucket=b)
    k1, k2 = new_key(), new_key()
    data = os.urandom(40 * MIB)
    r = s3.put_object(Bucket=b, Key="big", Body=data, **ssec(k1))
    md5_1 = base64.b64encode(hashlib.md5(k1.encode()).digest()).decode()
    assert r["SSECustomerAlgorithm"] == "AES256", r
    assert r["SSECustomerKeyMD5"] == md5_1, r
    assert "ServerSideEncryption" not in r, r
    h = s3.head_object(Bucket=b, Key="big", **ssec(k1))
    assert h["ContentLength"] == len(data) and h["SSECustomerKeyMD5"] == md5_1, h
    assert read(s3, b, "big", **ssec(k1)) == data
    c = 8 * MIB
    for lo, hi in [
        (100, 199),  # inside the first chunk
        (c - 10, c + 9),  # across one boundary
        (5 * MIB, 21 * MIB),  # across two
        (3 * c, 3 * c),  # the first byte of a chunk
        (len(data) - 1, len(data) - 1),  # the last byte
    ]:
        got = read(s3, b, "big", f"bytes={lo}-{hi}", **ssec(k1))
        assert got == data[lo:hi + 1], (lo, hi, len(got))
    assert read(s3, b, "big", "bytes=-100", **ssec(k1)) == data[-100:]

    # No key, a wrong key: refused before any byte, as S3 does.
    assert status_of(s3.get_object, Bucket=b, Key="big") == (400, "InvalidRequest")
    assert status_of(s3.get_object, Bucket=b, Key="big", **ssec(k2)) == (403, "AccessDenied")
    assert status_of(s3.head_object, Bucket=b, Key="big", **ssec(k2))[0] == 403
    assert status_of(s3.head_object, Bucket=b, Key="big")[0] == 400
    # A bad key MD5 or algorithm is InvalidArgument.
    fails("InvalidArgument", s3.get_object, Bucket=b, Key="big", SSECustomerAlgorithm="AES256",
          SSECustomerKey=k1, SSECustomerKeyMD5=base64.b64encode(b"x" * 16).decode())
    fails("InvalidArgument", s3.put_object, Bucket=b, Key="x", Body=b"x",
          SSECustomerAlgorithm="AES128", SSECustomerKey=k1)
    fails("InvalidArgument", s3.put_object, Bucket=b, Key="x", Body=b"x",
          SSECustomerAlgorithm="AES256", SSECustomerKey="x" * 16)
    # SSE-C headers on a plain object are not applicable.
    s3.put_object(Bucket=b, Key="plain", Body=b"plain bytes")
    fails("InvalidRequest", s3.get_object, Bucket=b, Key="plain", **ssec(k1))

    # Copies: between keys, to plain, from plain; a wrong source key is refused.
    s3.copy_object(Bucket=b, Key="copy2", CopySource={"Bucket": b, "Key": "big"},
                   **copy_ssec(k1), **ssec(k2))
    assert read(s3, b, "copy2", "bytes=1000-2000", **ssec(k2)) == data[1000:2001]
    assert status_of(s3.get_object, Bucket=b, Key="copy2", **ssec(k1))[0] == 403
    assert status_of(s3.copy_object, Bucket=b, Key="copy3", CopySource={"Bucket": b, "Key": "big"},
                     **copy_ssec(k2))[0] == 403
    small = os.urandom(3 * MIB)
    s3.put_object(Bucket=b, Key="small", Body=small, **ssec(k1))
    s3.copy_object(Bucket=b, Key="small-plain", CopySource={"Bucket": b, "Key": "small"},
                   **copy_ssec(k1))
    assert read(s3, b, "small-plain") == small
    s3.copy_object(Bucket=b, Key="small-again", CopySource={"Bucket": b, "Key": "small-plain"},
                   **ssec(k2))
    assert read(s3, b, "small-again", **ssec(k2)) == small
    fails("InvalidRequest", s3.get_object, Bucket=b, Key="small-again")
    # Re-encrypting in place (copy onto itself with a new key) is allowed.
    s3.copy_object(Bucket=b, Key="small", CopySource={"Bucket": b, "Key": "small"},
                   **copy_ssec(k1), **ssec(k2))
    assert read(s3, b, "small", **ssec(k2)) == small

    # Multipart with SSE-C: every part with the upload's key.
    up = s3.create_multipart_upload(Bucket=b, Key="mp", **ssec(k1))
    assert up["SSECustomerKeyMD5"] == md5_1, up
    uid = up["UploadId"]
    p1, p2 = os.urandom(5 * MIB), os.urandom(MIB + 7)
    assert status_of(s3.upload_part, Bucket=b, Key="mp", UploadId=uid, PartNumber=1,
                     Body=p1)[0] == 400
    assert status_of(s3.upload_part, Bucket=b, Key="mp", UploadId=uid, PartNumber=1,
                     Body=p1, **ssec(k2))[0] == 403
    e1 = s3.upload_part(Bucket=b, Key="mp", UploadId=uid, PartNumber=1, Body=p1, **ssec(k1))
    assert e1["SSECustomerKeyMD5"] == md5_1, e1
    e2 = s3.upload_part_copy(Bucket=b, Key="mp", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": b, "Key": "small-plain"},
                             CopySourceRange=f"bytes=0-{len(p2) - 1}", **ssec(k1))
    s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": e1["ETag"]},
        {"PartNumber": 2, "ETag": e2["CopyPartResult"]["ETag"]},
    ]})
    whole = p1 + small[:len(p2)]
    assert read(s3, b, "mp", **ssec(k1)) == whole
    lo = 5 * MIB - 5
    assert read(s3, b, "mp", f"bytes={lo}-{lo + 9}", **ssec(k1)) == whole[lo:lo + 10]
    assert read(s3, b, "mp", PartNumber=2, **ssec(k1)) == whole[5 * MIB:]
    fails("InvalidRequest", s3.get_object, Bucket=b, Key="mp")


def sse_c_needs_tls(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    s3.create_bucket(Bucket="ssec-tls")
    fails("InvalidRequest", s3.put_object, Bucket="ssec-tls", Key="k", Body=b"x",
          **ssec(new_key()))


def sse_s3_kms(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    b = "ssekms"
    s3.create_bucket(Bucket=b)
    data = os.urandom(17 * MIB + 3)
    r = s3.put_object(Bucket=b, Key="s3", Body=data, ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256", r
    assert r["ETag"].strip('"') == hashlib.md5(data).hexdigest(), r
    h = s3.head_object(Bucket=b, Key="s3")
    assert h["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in h, h
    g = s3.get_object(Bucket=b, Key="s3", Range="bytes=8388600-8388700")
    assert g["ServerSideEncryption"] == "AES256", g
    assert g["Body"].read() == data[8388600:8388701]
    assert read(s3, b, "s3") == data

    # SSE-KMS with the default key, a named key (by name, alias, ARN), a context.
    r = s3.put_object(Bucket=b, Key="kms-default", Body=b"kms bytes",
                      ServerSideEncryption="aws:kms")
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == "default", r
    assert read(s3, b, "kms-default") == b"kms bytes"
    for i, kid in enumerate(["app", "alias/app", "arn:aws:kms:us-east-1:000000000000:key/app"]):
        r = s3.put_object(Bucket=b, Key=f"kms-app-{i}", Body=data[:MIB],
                          ServerSideEncryption="aws:kms", SSEKMSKeyId=kid, BucketKeyEnabled=True)
        assert r["SSEKMSKeyId"] == "app" and r["BucketKeyEnabled"], r
        h = s3.head_object(Bucket=b, Key=f"kms-app-{i}")
        assert h["ServerSideEncryption"] == "aws:kms" and h["SSEKMSKeyId"] == "app", h
        assert read(s3, b, f"kms-app-{i}") == data[:MIB]
    ctx = base64.b64encode(b'{"team":"storage","purpose":"test"}').decode()
    r = s3.put_object(Bucket=b, Key="kms-ctx", Body=b"with context",
                      ServerSideEncryption="aws:kms", SSEKMSKeyId="app",
                      SSEKMSEncryptionContext=ctx)
    assert read(s3, b, "kms-ctx") == b"with context"
    fails("KMS.NotFoundException", s3.put_object, Bucket=b, Key="x", Body=b"x",
          ServerSideEncryption="aws:kms", SSEKMSKeyId="no-such-key")
    fails("InvalidArgument", s3.put_object, Bucket=b, Key="x", Body=b"x",
          ServerSideEncryption="AES256", SSEKMSKeyId="app")
    fails("InvalidArgument", s3.put_object, Bucket=b, Key="x", Body=b"x",
          ServerSideEncryption="rot13")
    # SSE-C headers on an SSE-S3 object are not applicable.
    fails("InvalidRequest", s3.get_object, Bucket=b, Key="s3", **ssec(new_key()))

    # Copies: SSE-S3 to KMS, KMS to plain; multipart with SSE-KMS.
    r = s3.copy_object(Bucket=b, Key="s3-to-kms", CopySource={"Bucket": b, "Key": "s3"},
                       ServerSideEncryption="aws:kms", SSEKMSKeyId="app")
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == "app", r
    assert read(s3, b, "s3-to-kms", "bytes=0-99") == data[:100]
    r = s3.copy_object(Bucket=b, Key="kms-to-plain", CopySource={"Bucket": b, "Key": "kms-app-0"})
    assert "ServerSideEncryption" not in r, r
    assert read(s3, b, "kms-to-plain") == data[:MIB]
    up = s3.create_multipart_upload(Bucket=b, Key="mp", ServerSideEncryption="aws:kms",
                                    SSEKMSKeyId="app")
    assert up["SSEKMSKeyId"] == "app", up
    parts = []
    for n, chunk in enumerate([data[:5 * MIB], data[5 * MIB:6 * MIB]], start=1):
        e = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=chunk)
        assert e["ServerSideEncryption"] == "aws:kms", e
        parts.append({"PartNumber": n, "ETag": e["ETag"]})
    done = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert done["ServerSideEncryption"] == "aws:kms", done
    assert read(s3, b, "mp") == data[:6 * MIB]

    # Default bucket encryption.
    fails("ServerSideEncryptionConfigurationNotFoundError", s3.get_bucket_encryption, Bucket=b)
    s3.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                "KMSMasterKeyID": "app"},
         "BucketKeyEnabled": True}]})
    cfg = s3.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert cfg["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                         "KMSMasterKeyID": "app"}, cfg
    r = s3.put_object(Bucket=b, Key="by-default", Body=b"defaulted")
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == "app", r
    r = s3.put_object(Bucket=b, Key="explicit", Body=b"x", ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256", r
    s3.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert s3.put_object(Bucket=b, Key="d2", Body=b"x")["ServerSideEncryption"] == "AES256"
    fails("KMS.NotFoundException", s3.put_bucket_encryption, Bucket=b,
          ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {
              "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "nope"}}]})
    s3.delete_bucket_encryption(Bucket=b)
    assert "ServerSideEncryption" not in s3.put_object(Bucket=b, Key="d3", Body=b"x")
    assert read(s3, b, "by-default") == b"defaulted"
    versioned(s3)


def versioned(s3):
    """Encrypted versions of one key, each readable by its version id."""
    b = "ssever"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    k = new_key()
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"one", ServerSideEncryption="AES256")
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"two", ServerSideEncryption="aws:kms")
    v3 = s3.put_object(Bucket=b, Key="k", Body=b"three", **ssec(k))
    assert read(s3, b, "k", **ssec(k)) == b"three"
    assert read(s3, b, "k", VersionId=v1["VersionId"]) == b"one"
    g = s3.get_object(Bucket=b, Key="k", VersionId=v2["VersionId"])
    assert g["ServerSideEncryption"] == "aws:kms" and g["Body"].read() == b"two", g
    fails("InvalidRequest", s3.get_object, Bucket=b, Key="k", VersionId=v3["VersionId"])


def rotated_keys_still_read(endpoint, ak, sk):
    """Run after the key `app` was rotated: what its old version sealed still reads."""
    s3 = client(endpoint, ak, sk)
    b = "ssekms"
    assert read(s3, b, "kms-ctx") == b"with context"
    assert read(s3, b, "kms-app-0", "bytes=0-9") == read(s3, b, "kms-to-plain", "bytes=0-9")
    s3.put_object(Bucket=b, Key="after-rotation", Body=b"new version",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId="app")
    assert read(s3, b, "after-rotation") == b"new version"


MARK_SEALED = b"KELP-SEALED-PLAINTEXT-MARKER-"
MARK_PLAIN = b"KELP-PLAIN-CONTROL-MARKER-"


def no_plaintext_at_rest(endpoint, ak, sk, volume_dir):
    s3 = client(endpoint, ak, sk)
    b = "at-rest"
    s3.create_bucket(Bucket=b)
    sealed = MARK_SEALED * (3 * MIB // len(MARK_SEALED))
    s3.put_object(Bucket=b, Key="c", Body=sealed, **ssec(new_key()))
    s3.put_object(Bucket=b, Key="s3", Body=sealed, ServerSideEncryption="AES256")
    s3.put_object(Bucket=b, Key="kms", Body=sealed, ServerSideEncryption="aws:kms")
    up = s3.create_multipart_upload(Bucket=b, Key="mp", ServerSideEncryption="AES256")
    e = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=sealed)
    s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e["ETag"]}]})
    s3.put_object(Bucket=b, Key="plain", Body=MARK_PLAIN * 1000)
    found_sealed, found_plain = [], False
    for root, _, files in os.walk(volume_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                blob = fh.read()
            if MARK_SEALED[:20] in blob:
                found_sealed.append(f)
            found_plain |= MARK_PLAIN in blob
    assert found_plain, "the scan must see a plain object's bytes"
    assert not found_sealed, f"plaintext of an encrypted object in {found_sealed}"
