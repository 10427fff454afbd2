"""Bucket CORS (imported by s3_checks.py): Put/Get/DeleteBucketCors through boto3,
preflight OPTIONS requests answered from the rules (unsigned, as browsers send them),
and Access-Control-* headers on actual answers for a matching Origin."""

import urllib.error
import urllib.request

from botocore.exceptions import ClientError

from s3_checks import client


def raw(method, url, headers):
    """(status, headers) of one unsigned request."""
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}


def cors(endpoint, ak, sk):
    s3 = client(endpoint, ak, sk)
    b = "cors-bucket"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="page.txt", Body=b"hello")
    url = f"{endpoint}/{b}/page.txt"
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
                 "Access-Control-Request-Headers": "content-type, x-amz-meta-from"}

    # No configuration: GetBucketCors says so, preflights are refused.
    try:
        s3.get_bucket_cors(Bucket=b)
        raise AssertionError("GetBucketCors without a configuration")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchCORSConfiguration", e.response
    assert raw("OPTIONS", url, preflight)[0] == 403

    rules = [
        {"ID": "app", "AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "PUT"],
         "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
    ]
    s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": rules})
    got = s3.get_bucket_cors(Bucket=b)["CORSRules"]
    assert got == rules, got

    status, h = raw("OPTIONS", url, preflight)
    assert status == 200, (status, h)
    assert h["access-control-allow-origin"] == "https://app.example.com", h
    assert "PUT" in h["access-control-allow-methods"], h
    assert h["access-control-allow-headers"] == "content-type, x-amz-meta-from", h
    assert h["access-control-max-age"] == "600", h
    assert h["access-control-expose-headers"] == "ETag", h
    # A header no rule allows, a method no rule allows for that origin.
    status, _ = raw("OPTIONS", url, dict(preflight, **{"Access-Control-Request-Headers": "authorization"}))
    assert status == 403
    status, _ = raw("OPTIONS", url, {"Origin": "https://elsewhere.test", "Access-Control-Request-Method": "PUT"})
    assert status == 403
    # Any origin may GET, answered with "*".
    status, h = raw("OPTIONS", url, {"Origin": "https://elsewhere.test", "Access-Control-Request-Method": "GET"})
    assert status == 200 and h["access-control-allow-origin"] == "*", (status, h)
    # Not a preflight.
    assert raw("OPTIONS", url, {})[0] == 400

    # Actual (signed) requests with an Origin get the headers of the first matching rule.
    def on_origin(request, **_):
        request.headers["Origin"] = "https://app.example.com"
    s3.meta.events.register("before-sign.s3.GetObject", on_origin)
    r = s3.get_object(Bucket=b, Key="page.txt")
    h = r["ResponseMetadata"]["HTTPHeaders"]
    assert h["access-control-allow-origin"] == "https://app.example.com", h
    assert h["access-control-expose-headers"] == "ETag", h
    s3.meta.events.unregister("before-sign.s3.GetObject", on_origin)

    # Malformed configurations are refused and change nothing.
    for bad in ([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}],
                [{"AllowedOrigins": ["*a*b"], "AllowedMethods": ["GET"]}]):
        try:
            s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": bad})
            raise AssertionError(f"accepted {bad}")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidRequest", e.response
    assert s3.get_bucket_cors(Bucket=b)["CORSRules"] == rules

    s3.delete_bucket_cors(Bucket=b)
    assert raw("OPTIONS", url, preflight)[0] == 403
    try:
        s3.get_bucket_cors(Bucket=b)
        raise AssertionError("GetBucketCors after DeleteBucketCors")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchCORSConfiguration", e.response
